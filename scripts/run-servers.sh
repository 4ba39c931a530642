#!/usr/bin/env bash
# Upstream chitchat-test's run-servers.sh with the Go binary: 101 nodes on
# 127.0.0.1:10000..10100, all seeded with 127.0.0.1:10002, default 500 ms
# gossip interval. Press Enter (or Ctrl-C) to stop them all.
#
# Run by hand, not by CI:  scripts/run-servers.sh
# For a handful of nodes, prefer:  go run ./cmd/chitchat-demo cluster -n 5
#
# Unlike upstream, this does not `killall` leftovers of a previous run: it
# stops exactly the processes it started (its own process group).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(mktemp -d)/chitchat-demo"
go build -o "$bin" ./cmd/chitchat-demo

trap 'trap - INT TERM EXIT; rm -rf "$(dirname "$bin")"; kill 0' INT TERM EXIT
for i in $(seq 10000 10100); do
  listen_addr="127.0.0.1:$i"
  echo "$listen_addr"
  "$bin" --listen_addr "$listen_addr" --seed 127.0.0.1:10002 --node_id "node_$i" &
done

echo "101 nodes started; open http://127.0.0.1:10000/ui. Press Enter to stop them."
read -r
