package e2e

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// ddlProxy is a TCP proxy in front of the MariaDB server that the soak's
// targets are reached through. It reads the MySQL protocol both ways (no
// TLS, no compression) and records, for every DDL statement a client
// sends, how the server answered it: OK, an error (with its code), or no
// answer because the connection ended first.
type ddlProxy struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	sends map[string][]ddlOutcome // DDL text -> outcome of each send
}

// ddlOutcome is how the server answered one send of a DDL statement.
type ddlOutcome struct {
	OK       bool
	ErrCode  uint16 // when the server answered an error
	Answered bool
}

func newDDLProxy(t *testing.T, upstream string) *ddlProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ddlProxy{ln: ln, upstream: upstream, sends: map[string][]ddlOutcome{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.serve(c) }()
		}
	}()
	return p
}

// Addr is the proxy's host:port.
func (p *ddlProxy) Addr() string { return p.ln.Addr().String() }

// Sends returns every DDL statement seen with the outcome of each send.
func (p *ddlProxy) Sends() map[string][]ddlOutcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]ddlOutcome{}
	for k, v := range p.sends {
		out[k] = append([]ddlOutcome(nil), v...)
	}
	return out
}

// ddlText returns the schema change a query makes, without the leading
// comment tern tags it with (`/* tern apply=N task=M */`), or "" when it
// is not one the soak counts: the soak's applies are ALTERs; planning's
// shadow schemas see only CREATE and DROP.
func ddlText(q string) string {
	q = strings.TrimSpace(q)
	for strings.HasPrefix(q, "/*") {
		end := strings.Index(q, "*/")
		if end < 0 {
			return ""
		}
		q = strings.TrimSpace(q[end+2:])
	}
	if !strings.HasPrefix(strings.ToUpper(q), "ALTER TABLE") {
		return ""
	}
	return q
}

// serve pipes one client connection to the server, watching both ways.
func (p *ddlProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	var mu sync.Mutex
	pending := "" // DDL sent, not answered yet
	settle := func(o ddlOutcome) {
		mu.Lock()
		q := pending
		pending = ""
		mu.Unlock()
		if q == "" {
			return
		}
		p.mu.Lock()
		p.sends[q] = append(p.sends[q], o)
		p.mu.Unlock()
	}
	defer settle(ddlOutcome{}) // the connection ended before the answer
	done := make(chan struct{}, 2)
	go func() {
		// client -> server: a command is a packet with sequence id 0.
		_ = pipePackets(server, client, func(seq byte, payload []byte) {
			if seq == 0 && len(payload) > 1 && payload[0] == 0x03 {
				if q := ddlText(string(payload[1:])); q != "" {
					mu.Lock()
					pending = q
					mu.Unlock()
				}
			}
		})
		server.Close()
		done <- struct{}{}
	}()
	go func() {
		// server -> client: the first packet of a command's answer has
		// sequence id 1: OK (0x00) or ERR (0xff, then the error code).
		_ = pipePackets(client, server, func(seq byte, payload []byte) {
			if seq != 1 || len(payload) == 0 {
				return
			}
			mu.Lock()
			has := pending != ""
			mu.Unlock()
			if !has {
				return
			}
			switch payload[0] {
			case 0x00:
				settle(ddlOutcome{OK: true, Answered: true})
			case 0xff:
				var code uint16
				if len(payload) >= 3 {
					code = binary.LittleEndian.Uint16(payload[1:3])
				}
				settle(ddlOutcome{ErrCode: code, Answered: true})
			}
		})
		client.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}

// pipePackets copies MySQL packets from src to dst, calling see with each
// packet's sequence id and payload (a payload split over several packets
// is seen by its first one only, which is enough for a command's text).
func pipePackets(dst io.Writer, src io.Reader, see func(seq byte, payload []byte)) error {
	hdr := make([]byte, 4)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		payload := make([]byte, n)
		if _, err := io.ReadFull(src, payload); err != nil {
			return err
		}
		see(hdr[3], payload)
		if _, err := dst.Write(append(hdr, payload...)); err != nil {
			return err
		}
		hdr = make([]byte, 4)
	}
}
