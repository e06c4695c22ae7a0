#!/usr/bin/env bash
# Make RabbitMQ's STOMP plugin (shipped with Debian's rabbitmq-server) listen on 127.0.0.1:61613,
# for hermes's STOMP delivery and its tests.  RabbitMQ must already run on 127.0.0.1:5672.
# Idempotent; needs root (or sudo) to talk to the broker node.  Exit status 0 once the port answers.
set -euo pipefail
PORT=61613
listening() { (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; }
listening && exit 0

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
command -v rabbitmq-plugins >/dev/null || { echo "rabbitmq-plugins not found (install rabbitmq-server)" >&2; exit 1; }
$SUDO rabbitmqctl await_startup --timeout 60 >/dev/null
# The plugin listens on every interface by default; bind it to loopback before it starts.
$SUDO rabbitmqctl eval \
    "application:load(rabbitmq_stomp), application:set_env(rabbitmq_stomp, tcp_listeners, [{\"127.0.0.1\", $PORT}])." >/dev/null
$SUDO rabbitmq-plugins enable rabbitmq_stomp >/dev/null
for _ in $(seq 30); do listening && exit 0; sleep 1; done
echo "RabbitMQ's STOMP plugin did not start listening on 127.0.0.1:$PORT" >&2
exit 1
