// Command notify-send sends its argument as one datagram to
// $NOTIFY_SOCKET, like systemd-notify, for tests whose busybox payloads
// need to speak sd_notify. It is built statically into the test rootfs.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" || len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: NOTIFY_SOCKET=PATH notify-send 'READY=1\\n...'")
		os.Exit(2)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify-send:", err)
		os.Exit(1)
	}
	defer conn.Close()
	msg := strings.ReplaceAll(strings.Join(os.Args[1:], "\n"), `\n`, "\n")
	if _, err := conn.Write([]byte(msg)); err != nil {
		fmt.Fprintln(os.Stderr, "notify-send:", err)
		os.Exit(1)
	}
}
