#!/bin/sh
# make run: bxd on 127.0.0.1 with a development wallet, a metagraph that
# registers a development validator, and the best embedding model found:
# the real all-MiniLM-L6-v2 when its model.safetensors sits in
# ../shared/models/all-MiniLM-L6-v2, else generated weights of the same
# shape (which bxd, /metrics and every log line call synthetic).
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
dev="$build/dev"
bxkey="$build/tools/bx-key/bx-key"
models="$(dirname "$0")/../../shared/models/all-MiniLM-L6-v2"
mkdir -p "$dev"

key() { # wallet -> ss58, creating the hotkey once
	if [ ! -f "$dev/wallets/$1/hotkeys/default" ]; then
		"$bxkey" new --wallets-dir "$dev/wallets" --wallet "$1" --hotkey default >/dev/null
	fi
	"$bxkey" show --wallets-dir "$dev/wallets" --wallet "$1" --hotkey default |
		sed -n 's/^ss58: *//p'
}
miner=$(key miner)
validator=$(key validator)
cat >"$dev/metagraph.json" <<JSON
{"netuid": 0, "block": 1, "neurons": [
 {"uid": 0, "hotkey": "$miner", "stake": 0.0, "validator_permit": false, "ip": "127.0.0.1"},
 {"uid": 1, "hotkey": "$validator", "stake": 10000.0, "validator_permit": true, "ip": "127.0.0.1"}
]}
JSON

model="$models"
if [ ! -f "$models/model.safetensors" ]; then
	model="$dev/minilm-synthetic"
	if [ ! -f "$model/model.safetensors" ]; then
		echo "run-dev: no upstream weights in $models; generating synthetic ones of the same shape"
		mkdir -p "$model"
		cp "$models/vocab.txt" "$models/config.json" "$model/"
		"$build/tools/bx-mkweights/bx-mkweights" --seed 1 "$model" >/dev/null
	fi
fi

echo "run-dev: miner hotkey $miner; development validator $validator (wallet $dev/wallets/validator)"
"$build/firmware/bxd" --wallet.path="$dev/wallets" --wallet.name=miner \
	--metagraph="$dev/metagraph.json" --model.dir="$model" "$@" &
bxd=$!
trap 'kill -TERM $bxd 2>/dev/null; wait $bxd; exit 0' INT TERM

# Ready when the management port says so (bxd exits on a start-up error).
python3 - <<'PY' || { wait $bxd; exit 1; }
import sys, time, urllib.request
for _ in range(600):
    try:
        if urllib.request.urlopen("http://127.0.0.1:9100/readyz", timeout=1).status == 200:
            sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY

# A few seconds of validator-shaped load, so the first thing you see is an answer.
validate="$build/tools/bx-validator/bx-validator --axon-hotkey $miner --wallet-path $dev/wallets \
--wallet validator --hotkey default --synapse echo:2,embedding:2,generation:1,stream:1 --connections 4"
echo "run-dev: bxd is ready; 3 s of signed requests from the development validator:"
$validate --duration 3 --quiet || true
echo "run-dev: again: $validate --duration 10"
echo "run-dev: metrics: curl 127.0.0.1:9100/metrics; Ctrl-C drains and stops bxd"
wait $bxd
