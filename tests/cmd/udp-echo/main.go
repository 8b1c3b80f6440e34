// Command udp-echo is the UDP server and client of the networking tests
// (busybox has neither). "udp-echo serve PORT" answers each datagram on
// [::]:PORT (IPv4 and IPv6) with the host's name, a space and the
// datagram; "udp-echo ask ADDRESS:PORT MESSAGE" sends MESSAGE, prints the
// first answer and exits 0, or exits 1 when none comes within two
// seconds. It is built statically into the test rootfs.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "serve":
		err = serve(os.Args[2])
	case len(os.Args) == 4 && os.Args[1] == "ask":
		err = ask(os.Args[2], os.Args[3])
	default:
		fmt.Fprintln(os.Stderr, "usage: udp-echo serve PORT | udp-echo ask ADDRESS:PORT MESSAGE")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "udp-echo:", err)
		os.Exit(1)
	}
}

// serve answers datagrams on port until killed.
func serve(port string) error {
	name, err := os.Hostname()
	if err != nil {
		return err
	}
	c, err := net.ListenPacket("udp", ":"+port)
	if err != nil {
		return err
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		os.Exit(0)
	}()
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		c.WriteTo(append([]byte(name+" "), buf[:n]...), from)
	}
}

// ask sends msg to addr and prints the answer.
func ask(addr, msg string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", buf[:n])
	return nil
}
