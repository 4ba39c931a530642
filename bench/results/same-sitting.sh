#!/usr/bin/env bash
# The same-sitting matrix behind BENCHMARKS.md: chitchat-go (cmd/chitchat-bench)
# and hashicorp/memberlist (bench/memberlist, its own module) back to back on this
# machine, with the same flags, REPS times (default 3). JSON lines go to
# bench/results/<date>.jsonl, progress to <date>.log, and the load average
# before each run to <date>.load.tsv. Then the -sim runs (seeds 1..REPS).
# About 7 minutes per repetition on 2 cores, plus a few minutes of -sim.
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${REPS:-3}
base=bench/results/${DATE:-$(date +%F)}
ours=$(mktemp -d)/chitchat-bench
ml=$(mktemp -d)/mlbench
go build -o "$ours" ./cmd/chitchat-bench
(cd bench/memberlist && go build -o "$ml" .)

run() {
	printf '%s\t%s\t%s\n' "$(date +%T)" "$(cut -d' ' -f1-3 /proc/loadavg)" "${*#*/}" >>"$base.load.tsv"
	"$@" >>"$base.jsonl" 2>>"$base.log" || true
}

for rep in $(seq "$reps"); do
	for n in 10 50 100 200; do
		run "$ours" -n "$n"
		run "$ml" -n "$n" -profile fast
		run "$ml" -n "$n" -profile lan
	done
	run "$ours" -n 50 -loss 0.2
	run "$ml" -n 50 -profile fast -loss 0.2
done
for seed in $(seq "$reps"); do
	run "$ours" -sim -n 100,1000,2000 -seed "$seed"
done
