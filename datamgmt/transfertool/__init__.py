"""Transfer tools: move bytes between storage endpoints for the conveyor (see base.TransferTool)."""
