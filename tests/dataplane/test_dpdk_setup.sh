#!/bin/sh
# Covers: scripts/dpdk-setup.sh in dry-run mode: it prints the steps (sysfs
# or the dpdk-*.py tools) and the bxd settings, changes nothing, and refuses
# bad arguments. Usage: test_dpdk_setup.sh <path to dpdk-setup.sh>
set -u
script="$1"
fail=0
pass=0

check() { # name, condition result
	if [ "$2" -eq 0 ]; then
		pass=$((pass + 1))
	else
		echo "FAIL: $1"
		fail=$((fail + 1))
	fi
}

before=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2> /dev/null || echo none)
out=$(sh "$script" -n --pages 64 2>&1)
check "dry run exits 0" $?
echo "$out" | grep -q -e 'nr_hugepages' -e 'dpdk-hugepages.py -p 2M --setup 128M'
check "dry run prints the reservation" $?
echo "$out" | grep -q 'dataplane = dpdk'
check "dry run prints the bxd settings" $?
after=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2> /dev/null || echo none)
[ "$before" = "$after" ]
check "dry run reserves nothing" $?

sh "$script" -n --pages x > /dev/null 2>&1
[ $? -eq 1 ]
check "bad page count refused" $?
sh "$script" -n --page-size 4K > /dev/null 2>&1
[ $? -eq 1 ]
check "bad page size refused" $?
sh "$script" -n --bind 01:00.0 > /dev/null 2>&1
[ $? -eq 1 ]
check "short PCI address refused" $?
sh "$script" -n --bind ffff:ff:1f.7 2>&1 | grep -q 'no PCI device'
check "missing device named" $?
sh "$script" --frobnicate > /dev/null 2>&1
[ $? -eq 2 ]
check "unknown option is a usage error" $?
sh "$script" --status > /dev/null 2>&1
check "status exits 0" $?

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
