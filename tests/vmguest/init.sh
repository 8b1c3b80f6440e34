#!/bin/busybox sh
# /init of cove's test guest (package vmguest). Kernel command line
# parameter cove.test= selects what it does; see guest.go.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do insmod "/lib/modules/$m" || echo "cove-guest: insmod $m failed"; done < /etc/modules
echo COVE-GUEST-BOOTED

mode=
for a in $(cat /proc/cmdline); do
	case "$a" in cove.test=*) mode="${a#cove.test=}" ;; esac
done

# waitdev PATH: devices probe asynchronously after insmod.
waitdev() {
	i=0
	while [ ! -e "$1" ] && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
	[ -e "$1" ]
}

# powerbutton: block until the ACPI power button is pressed. The button
# driver (button.ko) turns the ACPI notification (microvm: from the GED
# device; q35: the PM1 fixed event) into a KEY_POWER input event, which
# evdev makes readable on /dev/input/eventN.
powerbutton() {
	dev=
	i=0
	while [ -z "$dev" ] && [ $i -lt 100 ]; do
		for e in /sys/class/input/event*; do
			[ -e "$e/device/name" ] || continue
			[ "$(cat "$e/device/name")" = "Power Button" ] && dev=/dev/input/${e##*/}
		done
		[ -n "$dev" ] || usleep 50000
		i=$((i + 1))
	done
	if [ -z "$dev" ] || ! waitdev "$dev"; then
		echo "cove-guest: no power button input device"
		sleep 2147483647
	fi
	# Open the device before saying so: evdev queues events for open
	# readers only, a press before the open is lost.
	exec 3<"$dev"
	echo COVE-GUEST-WAITING
	dd of=/dev/null bs=24 count=1 <&3 2>/dev/null
	echo COVE-GUEST-SHUTDOWN-HOOK
	sync
	poweroff -f
}

# bridge: a VM on a cove network. Its address is on the kernel command
# line, ip=ADDR::GATEWAY:NETMASK:HOSTNAME:DEVICE:off[:DNS] and cove.ip6=,
# cove.gw6=, which this init applies as an initramfs (initramfs-tools,
# dracut) would: Debian's kernel has no CONFIG_IP_PNP to do it itself, and
# the NIC's driver is a module anyway. It serves its hostname on port
# 8080 and, with cove.fetch=URL, fetches URL (retrying for up to 60 s)
# and prints COVE-GUEST-FETCHED=FIRST-LINE.
bridge() {
	ipconf= ip6= gw6= fetch=
	for a in $(cat /proc/cmdline); do
		case "$a" in
		ip=*) ipconf="${a#ip=}" ;;
		cove.ip6=*) ip6="${a#cove.ip6=}" ;;
		cove.gw6=*) gw6="${a#cove.gw6=}" ;;
		cove.fetch=*) fetch="${a#cove.fetch=}" ;;
		esac
	done
	IFS=: read -r addr _ gw mask host dev _ dns <<-EOF
	$ipconf
	EOF
	[ -n "$addr" ] && [ -n "$dev" ] || { echo "cove-guest: no ip=ADDR::GW:MASK:HOST:DEV on the command line"; exit 1; }
	waitdev "/sys/class/net/$dev" || { echo "cove-guest: no $dev"; exit 1; }
	hostname "$host"
	ip link set lo up
	echo 0 > "/proc/sys/net/ipv6/conf/$dev/accept_dad"
	ifconfig "$dev" "$addr" netmask "$mask" up
	route add default gw "$gw"
	if [ -n "$ip6" ]; then
		ip -6 addr add "$ip6" dev "$dev"
		ip -6 route add default via "$gw6" dev "$dev"
	fi
	[ -z "$dns" ] || echo "nameserver $dns" > /etc/resolv.conf
	mkdir -p /www
	hostname > /www/index.html
	httpd -p 8080 -h /www
	echo COVE-GUEST-NET-UP
	[ -z "$fetch" ] || (
		i=0
		while [ $i -lt 120 ]; do
			if page=$(wget -q -O - "$fetch" 2>/dev/null); then
				echo "COVE-GUEST-FETCHED=$(echo "$page" | head -n 1)"
				exit 0
			fi
			usleep 500000
			i=$((i + 1))
		done
		echo "cove-guest: could not fetch $fetch"
	) &
}

case "$mode" in
poweroff)
	poweroff -f
	;;
wait)
	powerbutton
	;;
echo)
	# Interactive console (cove console, the virtio console hvc0): read a
	# line there, echo it back marked on both consoles.
	waitdev /dev/hvc0 || { echo "cove-guest: no hvc0"; exit 1; }
	echo COVE-GUEST-READING
	read -r line < /dev/hvc0
	echo "COVE-ECHO:$line"
	echo "COVE-ECHO:$line" > /dev/hvc0
	poweroff -f
	;;
ignore-acpi)
	echo COVE-GUEST-IGNORING-ACPI
	while :; do sleep 3600; done
	;;
crash)
	echo COVE-GUEST-CRASHING
	exit 1 # init exits: the kernel panics
	;;
disk)
	waitdev /dev/vda || { echo "cove-guest: no /dev/vda"; exit 1; }
	# Which disk is which: names and sizes in 512-byte sectors.
	disks=
	for b in /sys/block/vd*; do disks="$disks${disks:+,}${b##*/}:$(cat "$b/size")"; done
	echo COVE-DISKS=$disks
	mkdir -p /mnt
	if ! mount -t ext4 /dev/vda /mnt 2>/dev/null; then
		mke2fs -q /dev/vda && mount -t ext4 /dev/vda /mnt || exit 1
	fi
	n=$(cat /mnt/count 2>/dev/null || echo 0)
	n=$((n + 1))
	echo $n > /mnt/count
	umount /mnt
	sync
	echo COVE-DISK-COUNT=$n
	poweroff -f
	;;
writer)
	waitdev /dev/vda || { echo "cove-guest: no /dev/vda"; exit 1; }
	mkdir -p /mnt
	if ! mount -t ext4 /dev/vda /mnt 2>/dev/null; then
		mke2fs -q /dev/vda && mount -t ext4 /dev/vda /mnt || exit 1
	fi
	echo COVE-GUEST-WRITING
	i=0
	while :; do
		dd if=/dev/urandom of=/mnt/f$((i % 8)) bs=64k count=16 conv=fsync 2>/dev/null
		i=$((i + 1))
	done
	;;
net)
	# QEMU's user-mode network: the guest is 10.0.2.15, the gateway 10.0.2.2.
	# A static address: same result as udhcpc, without its round trip.
	waitdev /sys/class/net/eth0 || { echo "cove-guest: no eth0"; exit 1; }
	ip link set lo up
	ip addr add 10.0.2.15/24 dev eth0
	ip link set eth0 up
	ip route add default via 10.0.2.2
	mkdir -p /www
	echo COVE-GUEST-HTTP > /www/index.html
	httpd -p 80 -h /www
	echo COVE-GUEST-NET-UP
	powerbutton
	;;
bridge)
	bridge
	powerbutton
	;;
cidata)
	dev=
	i=0
	while [ -z "$dev" ] && [ $i -lt 100 ]; do
		dev=$(findfs LABEL=CIDATA 2>/dev/null)
		[ -n "$dev" ] || usleep 50000
		i=$((i + 1))
	done
	[ -n "$dev" ] || { echo "cove-guest: no disk labelled CIDATA"; exit 1; }
	mount -t vfat -o ro "$dev" /mnt || exit 1
	for f in meta-data user-data network-config; do
		[ -f "/mnt/$f" ] && sed "s/^/COVE-SEED:$f:/" "/mnt/$f"
	done
	umount /mnt
	poweroff -f
	;;
firmware)
	if [ -d /sys/firmware/efi ]; then echo COVE-EFI=yes; else echo COVE-EFI=no; fi
	sb=none
	mkdir -p /sys/firmware/efi/efivars 2>/dev/null
	mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
	v=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
	# 4 bytes of attributes, then the value.
	if [ -f $v ]; then
		set -- $(od -An -tu1 $v)
		sb=$5
	fi
	echo "COVE-SECURE-BOOT=$sb"
	i=0
	while [ ! -e /sys/class/tpm/tpm0 ] && [ $i -lt 40 ]; do usleep 50000; i=$((i + 1)); done
	tpms=$(ls /sys/class/tpm 2>/dev/null | tr '\n' ' ')
	tpms=${tpms% }
	echo "COVE-TPM=${tpms:-none}"
	powerbutton
	;;
agent)
	# Debian's qemu-ga on the guest agent's port (found by its name, as
	# udev's virtio-ports links would), its libraries where the host has
	# them; then a shell reading commands from the interactive console.
	port=
	i=0
	while [ -z "$port" ] && [ $i -lt 100 ]; do
		for p in /sys/class/virtio-ports/*; do
			[ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}
		done
		[ -n "$port" ] || usleep 50000
		i=$((i + 1))
	done
	[ -n "$port" ] && waitdev "$port" || { echo "cove-guest: no guest agent port"; exit 1; }
	LD_LIBRARY_PATH=/lib/x86_64-linux-gnu qemu-ga -m virtio-serial -p "$port" -t /tmp &
	echo COVE-GUEST-AGENT-UP
	waitdev /dev/hvc0 || { echo "cove-guest: no hvc0"; exit 1; }
	while read -r line < /dev/hvc0; do
		sh -c "$line"
		echo "COVE-RAN:$line"
	done &
	powerbutton
	;;
*)
	echo "cove-guest: unknown cove.test=$mode"
	exit 1
	;;
esac
