// Command gosock is a static Go program for mptcpgd run's tests:
//
//	gosock kinds               raw socket(2) calls: "tcp4 262" ...
//	gosock dial ADDR plain     Go's net with MPTCP turned off in the
//	                           Dialer, so only mptcpgd run can make it MPTCP
//	gosock dial ADDR default   Go's net as GODEBUG says
//	gosock compat              (GOARCH=386) socket(2) by its own 32-bit
//	                           number, then through socketcall(2)
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
)

func protocol(fd int) int {
	p, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_PROTOCOL)
	if err != nil {
		return -1
	}
	return p
}

func kinds() {
	for _, k := range []struct {
		name        string
		domain, typ int
	}{
		{"tcp4", syscall.AF_INET, syscall.SOCK_STREAM},
		{"tcp6", syscall.AF_INET6, syscall.SOCK_STREAM | syscall.SOCK_CLOEXEC},
		{"udp4", syscall.AF_INET, syscall.SOCK_DGRAM},
		{"unix-stream", syscall.AF_UNIX, syscall.SOCK_STREAM},
	} {
		fd, err := syscall.Socket(k.domain, k.typ, 0)
		if err != nil {
			fmt.Println(k.name, "error", err)
			continue
		}
		fmt.Println(k.name, protocol(fd))
		syscall.Close(fd)
	}
}

func dial(addr, mode string) error {
	var d net.Dialer
	if mode == "plain" {
		d.SetMultipathTCP(false)
	}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	mp, err := c.(*net.TCPConn).MultipathTCP()
	fmt.Println("multipath", mp, err)
	fmt.Fprintln(c, "hello")
	reply, err := bufio.NewReader(c).ReadString('\n')
	fmt.Print(reply)
	return err
}

// compat makes a socket with the i386 socket(2) number (359), then one
// with syscall.Socket, which Go implements with socketcall(2) on 386.
func compat() {
	if runtime.GOARCH != "386" {
		fmt.Println("compat needs GOARCH=386")
		os.Exit(2)
	}
	fd, _, errno := syscall.Syscall(359, syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if errno != 0 {
		fmt.Println("socket error", errno)
	} else {
		fmt.Println("socket", protocol(int(fd)))
	}
	sfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		fmt.Println("socketcall error", err)
		return
	}
	fmt.Println("socketcall", protocol(sfd))
}

func main() {
	switch {
	case len(os.Args) == 2 && os.Args[1] == "kinds":
		kinds()
	case len(os.Args) == 4 && os.Args[1] == "dial":
		if err := dial(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "gosock:", err)
			os.Exit(1)
		}
	case len(os.Args) == 2 && os.Args[1] == "compat":
		compat()
	default:
		fmt.Fprintln(os.Stderr, "usage: see the package comment")
		os.Exit(2)
	}
}
