#!/usr/bin/env bash
# The figures that close issues 13, 14 and 15 (protocol v1, docs/design/scale.md),
# in one sitting on this machine. Lines go to bench/results/<date>-v1.jsonl
# (UDP and -sim: cmd/benchplot reads them), -procs lines to <date>-v1-procs.jsonl
# (benchplot would take them for UDP lines), progress to <date>-v1.log, the load
# average before each run to <date>-v1.load.tsv.
#
#   REPS=3 bench/v1-figures.sh           # everything (hours: see SIM_NS)
#   ONLY=procs bench/v1-figures.sh       # one group: udp, sim, simpush, loss, procs
#   SIM_NS="1000 5000" bench/v1-figures.sh
#   DRY=1 bench/v1-figures.sh            # print the commands only
#
# Group by group (each -sim line also reports max_datagram_bytes, false_deaths,
# heap_bytes_per_observed_node, detect_rounds_median/last):
#   udp      issue 14/15: chitchat-go at N = 50, 100 (kv_spread_p50_s/p99_s,
#            leave_seen_s, heap) against memberlist fast, and at 20 % / 50 % loss
#   sim      issue 13: -mtu 1400 at SIM_NS (default 1000 5000 10000); the heap is
#            taken after 2,000 rounds at N = 1,000 only (it takes about an hour there)
#   simpush  issue 14: N = 1,000, 1 ms links, one write per node per 10 s, push on
#            and off (bytes_per_node_s, kv_spread_s)
#   loss     issue 13: N = 1,000 at 1 % and 5 % loss, -mtu 1400
#   procs    issue 15: 30 chitchat-demo processes, --interval_ms 300, one seed
# A -sim run whose live heap outgrows 60 % of the available memory stops with a message
# saying where it was (chitchat-bench -max-heap-gb): N = 10,000 needs the engine
# below about 200 bytes per observed node to fit 24 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-3}
only=${ONLY:-}
sim_ns=${SIM_NS:-1000 5000 10000}
base=bench/results/${DATE:-$(date +%F)}-v1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ours=$tmp/chitchat-bench
ml=$tmp/mlbench
demo=$tmp/chitchat-demo
if [[ -z ${DRY:-} ]]; then
	go build -o "$ours" ./cmd/chitchat-bench
	go build -o "$demo" ./cmd/chitchat-demo
	(cd bench/memberlist && go build -o "$ml" .)
fi

# run OUT CMD...: one run, its JSON line appended to OUT.
run() {
	local out=$1
	shift
	if [[ -n ${DRY:-} ]]; then
		echo "${*#"$tmp"/} >> $out"
		return
	fi
	printf '%s\t%s\t%s\n' "$(date +%T)" "$(cut -d' ' -f1-3 /proc/loadavg)" "${*#"$tmp"/}" >>"$base.load.tsv"
	"$@" >>"$out" 2>>"$base.log" || echo "$(date +%T) failed: $*" >>"$base.log"
}
want() { [[ -z $only || $only == "$1" ]]; }

for rep in $(seq "$reps"); do
	if want udp; then
		for n in 50 100; do
			run "$base.jsonl" "$ours" -n "$n" -mtu 1400 -seed "$rep"
			run "$base.jsonl" "$ml" -n "$n" -profile fast -seed "$rep"
		done
		for loss in 0.2 0.5; do
			run "$base.jsonl" "$ours" -n 50 -mtu 1400 -loss "$loss" -seed "$rep"
		done
	fi
	if want procs; then
		run "$base-procs.jsonl" "$ours" -procs 30 -interval 300ms -demo-bin "$demo"
	fi
done
for seed in $(seq "$reps"); do
	if want sim; then
		for n in $sim_ns; do
			warm=0
			[[ $n == 1000 ]] && warm=2000
			run "$base.jsonl" "$ours" -sim -n "$n" -mtu 1400 -seed "$seed" -sim-warm-rounds "$warm"
		done
	fi
	if want simpush; then
		for push in "" -no-push; do
			run "$base.jsonl" "$ours" -sim -n 1000 -mtu 1400 -latency 1ms -writes-per-node-s 0.1 \
				-sim-steady-rounds 100 -sim-warm-rounds 0 -seed "$seed" $push
		done
	fi
	if want loss; then
		for loss in 0.01 0.05; do
			run "$base.jsonl" "$ours" -sim -n 1000 -mtu 1400 -loss "$loss" -sim-warm-rounds 0 -seed "$seed"
		done
	fi
done
