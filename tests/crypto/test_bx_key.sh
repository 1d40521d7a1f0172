#!/bin/sh
# bx-key end to end in a scratch wallets folder: exit codes, files, known keys.
# Usage: test_bx_key.sh /path/to/bx-key
set -u
K="$1"
W=$(mktemp -d /tmp/bx-key-test-XXXXXX)
trap 'rm -rf "$W"' EXIT
pass=0
fail=0

check() { # name expected-rc actual-rc
	if [ "$2" = "$3" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1 (rc $3, want $2)"; fi
}
expect_out() { # name pattern output
	case "$3" in *"$2"*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)); echo "FAIL: $1: no '$2' in: $3" ;; esac
}

out=$("$K" --help); check help 0 $?
expect_out help "Usage: bx-key" "$out"
"$K" >/dev/null 2>&1; check no-command 2 $?
"$K" frobnicate >/dev/null 2>&1; check bad-command 2 $?
"$K" sign --bogus >/dev/null 2>&1; check bad-option 2 $?

# new hotkey: plaintext, 0600, mnemonic printed once, pub file beside it
out=$("$K" new --wallets-dir "$W" --wallet w --hotkey h --words 15 2>/dev/null); check new 0 $?
expect_out new-mnemonic "mnemonic: " "$out"
[ "$(stat -c %a "$W/w/hotkeys/h")" = 600 ]; check mode 0 $?
[ -f "$W/w/hotkeys/hpub.txt" ]; check pubfile 0 $?
"$K" new --wallets-dir "$W" --wallet w --hotkey h >/dev/null 2>&1; check no-overwrite 1 $?
out=$("$K" show --wallets-dir "$W" --wallet w --hotkey h); check show 0 $?
case "$out" in *mnemonic*|*privateKey*) check show-no-secret 0 1 ;; *) check show-no-secret 0 0 ;; esac
addr=$(echo "$out" | awk '/^ss58:/ {print $2}')

# sign and verify, text, hex and file forms
sig=$("$K" sign --wallets-dir "$W" --wallet w --hotkey h --message "hello"); check sign 0 $?
"$K" verify --ss58 "$addr" --signature "$sig" --message hello >/dev/null; check verify 0 $?
"$K" verify --ss58 "$addr" --signature "$sig" --hex 0x68656c6c6f >/dev/null; check verify-hex 0 $?
printf hello >"$W/msg"
"$K" verify --ss58 "$addr" --signature "$sig" --file "$W/msg" >/dev/null; check verify-file 0 $?
"$K" verify --ss58 "$addr" --signature "$sig" --message hellO >/dev/null; check verify-wrong 1 $?
"$K" verify --ss58 "$addr" --signature 0x12 --message hello >/dev/null 2>&1; check verify-badsig 2 $?
"$K" verify --ss58 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ --signature "$sig" --message hello >/dev/null 2>&1; check verify-badss58 2 $?

# imports against known addresses (btwallet test phrase, //Alice)
echo "old leopard transfer rib spatial phone calm indicate online fire caution review" >"$W/phrase"
out=$("$K" import --wallets-dir "$W" --wallet w --hotkey bt --mnemonic-file "$W/phrase" 2>/dev/null); check import-mnemonic 0 $?
expect_out import-mnemonic "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX" "$out"
out=$(echo "//Alice" | "$K" import --wallets-dir "$W" --wallet w --hotkey alice --suri-file - 2>/dev/null); check import-suri 0 $?
expect_out import-suri "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" "$out"
echo 0xfac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e >"$W/seed"
out=$("$K" import --wallets-dir "$W" --wallet w --hotkey dev --seed-file "$W/seed" 2>/dev/null); check import-seed 0 $?
expect_out import-seed "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV" "$out"
echo "bottom drive obey" >"$W/bad"
"$K" import --wallets-dir "$W" --wallet w --hotkey bad --mnemonic-file "$W/bad" >/dev/null 2>&1; check import-bad 1 $?

# known verify-only vector (polkadot-js wasm can_verify_known_message)
"$K" verify --public 0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d \
	--signature 0x1037eb7e51613d0dcf5930ae518819c87d655056605764840d9280984e1b7063c4566b55bf292fcab07b369d01095879b50517beca4d26e6a65866e25fec0d83 \
	--message "I hereby verify that I control 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" >/dev/null; check known-vector 0 $?
# <Bytes> wrapping as btwallet verifies, and without it
S=0x48ce2c90e08651adfc8ecef84e916f6d1bb51ebebd16150ee12df247841a5437951ea0f9d632ca165e6ab391532e75e701be6a1caa88c8a6bcca3511f55b4183
P=0xf84d048da2ddae2d9d8fd6763f469566e8817a26114f39408de15547f6d47805
"$K" verify --public $P --signature $S --message "message to sign" >/dev/null; check bytes-wrap 0 $?
"$K" verify --public $P --signature $S --message "message to sign" --no-bytes-wrap >/dev/null; check no-bytes-wrap 1 $?

# ss58 both ways
out=$("$K" ss58 --decode 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY); check ss58-decode 0 $?
expect_out ss58-decode "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d" "$out"
out=$("$K" ss58 --public 0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d --prefix 0); check ss58-encode 0 $?
expect_out ss58-encode "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5" "$out"

# encrypted coldkey (btwallet's real Argon2i cost): write, show without password, sign with it
printf 'pw-123\n' >"$W/pw"
printf 'wrong\n' >"$W/pw2"
"$K" import --wallets-dir "$W" --wallet w --coldkey --seed-file "$W/seed" --password-file "$W/pw" >/dev/null 2>&1; check cold-import 0 $?
head -c 5 "$W/w/coldkey" | grep -q '^\$NACL'; check cold-encrypted 0 $?
out=$("$K" show --wallets-dir "$W" --wallet w --coldkey); check cold-show 0 $?
expect_out cold-show "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV" "$out"
"$K" sign --wallets-dir "$W" --wallet w --coldkey --password-file "$W/pw2" --message x >/dev/null 2>"$W/err"; check cold-wrong-pw 1 $?
expect_out cold-wrong-pw "wrong password" "$(cat "$W/err")"

# list shows every wallet with its keys
out=$("$K" list --wallets-dir "$W"); check list 0 $?
expect_out list-hotkey "hotkey   bt" "$out"
expect_out list-alice "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" "$out"
expect_out list-cold "coldkey" "$out"
"$K" list --wallets-dir "$W/none" >/dev/null 2>&1; check list-missing 1 $?

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
