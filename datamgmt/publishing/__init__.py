"""Publishing of shares: plain records, metadata crosswalks and the OAI-PMH repository interface.

This package knows nothing of the catalogue: the catalogue turns its rows into
:class:`~datamgmt.publishing.records.ShareRecord` values and implements
:class:`~datamgmt.publishing.repository.Repository`, so the protocol engine and the
crosswalks can be tested and benchmarked without a database.
"""
