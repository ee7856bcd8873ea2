package loopback

import (
	"net"
	"testing"
)

func TestAddr(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "0.0.0.0:1": false, "192.168.1.2:1": false, "[::]:1": false} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := Addr(a); got != want {
			t.Errorf("Addr(%s) = %v, want %v", addr, got, want)
		}
		if got := Addr(&net.UnixAddr{Name: addr}); got != want { // read from the address's text
			t.Errorf("Addr(text %s) = %v, want %v", addr, got, want)
		}
	}
}

func TestHost(t *testing.T) {
	for h, want := range map[string]bool{
		"localhost": true, "LOCALHOST:8080": true, "127.0.0.1": true, "127.0.0.1:9710": true, "[::1]:9710": true, "::1": true,
		"example.com": false, "attacker.example:9710": false, "192.168.1.2:80": false, "": false, "[::]": false,
	} {
		if got := Host(h); got != want {
			t.Errorf("Host(%q) = %v, want %v", h, got, want)
		}
	}
}
