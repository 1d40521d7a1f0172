#!/bin/sh
# Prepare a machine for bxd's DPDK dataplane (dataplane = dpdk): reserve
# hugepages, bind the NIC to vfio-pci, and print the bxd settings and the
# exception-path commands that keep the box reachable once DPDK owns the NIC.
#
#   scripts/dpdk-setup.sh --status
#   scripts/dpdk-setup.sh -n --pages 1024 --bind 0000:01:00.0    # dry run: print only
#   scripts/dpdk-setup.sh --pages 1024 --bind 0000:01:00.0
#
# Uses dpdk-hugepages.py and dpdk-devbind.py (Debian package "dpdk") when they
# are installed, and the same sysfs steps they take when they are not. Run as
# root. Refuses to bind the interface that carries the default route or an
# address unless --force: that would cut the box off (see the exception path
# printed at the end).
set -eu

dry=0
pages=0
size=2M
pci=""
driver=vfio-pci
force=0
status=0

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	echo "options: -n|--dry-run  --pages N  --page-size 2M|1G  --bind PCI  --driver NAME"
	echo "         --force  --status  -h|--help"
}

while [ $# -gt 0 ]; do
	case "$1" in
	-n | --dry-run) dry=1 ;;
	--pages) pages="$2"; shift ;;
	--page-size) size="$2"; shift ;;
	--bind) pci="$2"; shift ;;
	--driver) driver="$2"; shift ;;
	--force) force=1 ;;
	--status) status=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "dpdk-setup: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

run() {
	if [ "$dry" -eq 1 ]; then
		echo "+ $*"
	else
		sh -c "$*"
	fi
}

die() {
	echo "dpdk-setup: $*" >&2
	exit 1
}

have() {
	command -v "$1" > /dev/null 2>&1
}

case "$size" in
2M) kb=2048 ;;
1G) kb=1048576 ;;
*) die "--page-size must be 2M or 1G" ;;
esac
case "$pages" in
'' | *[!0-9]*) die "--pages must be a number" ;;
esac
if [ -n "$pci" ]; then
	case "$pci" in
	[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7]) ;;
	*) die "--bind wants a full PCI address such as 0000:01:00.0" ;;
	esac
fi

show_status() {
	echo "== hugepages"
	for d in /sys/kernel/mm/hugepages/hugepages-*; do
		[ -d "$d" ] || continue
		echo "$(basename "$d"): $(cat "$d/nr_hugepages") reserved, $(cat "$d/free_hugepages") free"
	done
	grep -s ' hugetlbfs ' /proc/mounts || echo "no hugetlbfs mounted"
	echo "== network devices"
	if have dpdk-devbind.py; then
		dpdk-devbind.py --status-dev net
	else
		for d in /sys/bus/pci/devices/*; do
			[ "$(cat "$d/class")" = 0x020000 ] || continue
			drv=$(basename "$(readlink "$d/driver" 2> /dev/null)" 2> /dev/null || echo none)
			echo "$(basename "$d") driver=$drv"
		done
	fi
}

if [ "$status" -eq 1 ]; then
	show_status
	exit 0
fi
[ "$(id -u)" -eq 0 ] || [ "$dry" -eq 1 ] || die "run as root (or with -n to see the steps)"

# ---- hugepages
if [ "$pages" -gt 0 ]; then
	if have dpdk-hugepages.py; then
		run "dpdk-hugepages.py -p $size --setup $((pages * kb / 1024))M"
	else
		run "echo $pages > /sys/kernel/mm/hugepages/hugepages-${kb}kB/nr_hugepages"
		if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
			run "mkdir -p /dev/hugepages"
			run "mount -t hugetlbfs -o pagesize=$size nodev /dev/hugepages"
		fi
	fi
	if [ "$dry" -eq 0 ]; then
		got=$(cat /sys/kernel/mm/hugepages/hugepages-${kb}kB/nr_hugepages)
		[ "$got" -ge "$pages" ] ||
			echo "dpdk-setup: only $got of $pages pages reserved (memory fragmented? reserve at boot: hugepages=$pages on the kernel command line)" >&2
	fi
fi

# ---- the NIC
addr="" gw="" ifname=""
if [ -n "$pci" ]; then
	dev=/sys/bus/pci/devices/$pci
	[ -d "$dev" ] || die "no PCI device $pci (lspci -D lists them)"
	# the netdev may hang off the PCI device itself or a child (virtio0)
	for n in /sys/class/net/*; do
		case "$(readlink -f "$n/device" 2> /dev/null)" in
		*/"$pci" | */"$pci"/*) ifname=$(basename "$n") ;;
		esac
	done
	if [ -n "$ifname" ]; then
		addr=$(ip -4 -o addr show dev "$ifname" | awk '{print $4; exit}')
		gw=$(ip -4 route show default dev "$ifname" | awk '{print $3; exit}')
		if { [ -n "$addr" ] || [ -n "$gw" ]; } && [ "$force" -eq 0 ]; then
			die "$ifname ($pci) has ${addr:+address $addr}${addr:+${gw:+ and }}${gw:+the default route via $gw}: binding it to $driver cuts this box off that network. Reach the box another way (or set up the exception path below first) and pass --force."
		fi
	fi
	run "modprobe $driver"
	if [ "$driver" = vfio-pci ] && [ ! -e /sys/kernel/iommu_groups/0 ]; then
		echo "dpdk-setup: no IOMMU groups: enable the IOMMU (intel_iommu=on / amd_iommu=on) or use vfio-pci's enable_unsafe_noiommu_mode=1 on a trusted box" >&2
	fi
	if have dpdk-devbind.py; then
		run "dpdk-devbind.py --force -b $driver $pci"
	else
		[ -n "$ifname" ] && run "ip link set dev $ifname down"
		run "echo $driver > $dev/driver_override"
		[ -e "$dev/driver" ] && run "echo $pci > $dev/driver/unbind"
		run "echo $pci > /sys/bus/pci/drivers_probe"
	fi
fi

# ---- what bxd needs
cat << EOF

bxd settings (dataplane = dpdk):
  dataplane = dpdk
  dp.dpdk_device = ${pci:-0000:01:00.0}
  dp.dpdk_addr = ${addr:-<this NIC's IPv4>/<prefix>}
  dp.dpdk_gateway = ${gw:-<next hop, if any>}
  dp.dpdk_eal_args = ""            # hugepages as above; "--no-huge -m 512" only to try it out
  dp.dpdk_exception = "net_tap0,iface=bx-mgmt"

Exception path: DPDK creates bx-mgmt when bxd starts, gives it the NIC's
MAC, and passes it everything that is not the axon port (SSH, ICMP, ARP).
Give it the address the NIC had, once bxd is up (systemd: ExecStartPost=):
  ip addr add ${addr:-<address>/<prefix>} dev bx-mgmt
  ip link set bx-mgmt up
EOF
[ -n "$gw" ] && echo "  ip route add default via $gw dev bx-mgmt"
exit 0
