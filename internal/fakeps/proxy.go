package fakeps

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
)

// MySQL protocol capability flags the proxy reads or changes.
const (
	capConnectWithDB     = 0x00000008
	capSSL               = 0x00000800
	capSecureConnection  = 0x00008000
	capPluginAuthLenenc  = 0x00200000
	handshakeFixedHeader = 4 + 4 + 1 + 23
)

// proxy is the stand-in for a PlanetScale branch's MySQL endpoint: it
// forwards each connection to the local MariaDB and rewrites the database
// named in the client's HandshakeResponse41 to the database backing the
// branch the connecting user belongs to, so a branch password lands in its
// branch whatever database the DSN names.
type proxy struct {
	ln       net.Listener
	upstream string // host:port of MariaDB
	route    func(user string) (db string, ok bool)
	log      *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	drop  int // connections still to refuse (fault injection)
	wg    sync.WaitGroup
}

func newProxy(upstream string, route func(string) (string, bool), log *slog.Logger) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen mysql proxy: %w", err)
	}
	p := &proxy{ln: ln, upstream: upstream, route: route, log: log, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the host:port clients connect to (a password's access_host_url).
func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.drop > 0
		if refuse {
			p.drop--
		}
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.handle(c); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				p.log.Debug("fakeps: mysql proxy connection ended", "err", err)
			}
		}()
	}
}

func (p *proxy) handle(client net.Conn) error {
	p.track(client, true)
	defer p.track(client, false)
	defer client.Close()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return fmt.Errorf("dial upstream: %w", err)
	}
	p.track(server, true)
	defer p.track(server, false)
	defer server.Close()

	// Server greeting: hide TLS support, the stand-in speaks plain TCP.
	seq, greeting, err := readPacket(server)
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if err := clearSSL(greeting); err != nil {
		return err
	}
	if err := writePacket(client, seq, greeting); err != nil {
		return err
	}
	// Client's HandshakeResponse41: route it to the branch's database.
	seq, resp, err := readPacket(client)
	if err != nil {
		return fmt.Errorf("read handshake response: %w", err)
	}
	user, err := handshakeUser(resp)
	if err != nil {
		return err
	}
	if db, ok := p.route(user); ok {
		if resp, err = rewriteDB(resp, db); err != nil {
			return err
		}
	}
	if err := writePacket(server, seq, resp); err != nil {
		return err
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(server, client); server.Close(); done <- struct{}{} }()
	go func() { io.Copy(client, server); client.Close(); done <- struct{}{} }()
	<-done
	<-done
	return nil
}

func readPacket(r io.Reader) (seq byte, payload []byte, err error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return h[3], payload, nil
}

func writePacket(w io.Writer, seq byte, payload []byte) error {
	n := len(payload)
	if n >= 1<<24-1 {
		return errors.New("handshake packet too large")
	}
	b := make([]byte, 4+n)
	b[0], b[1], b[2], b[3] = byte(n), byte(n>>8), byte(n>>16), seq
	copy(b[4:], payload)
	_, err := w.Write(b)
	return err
}

// clearSSL removes CLIENT_SSL from an initial handshake packet (v10).
func clearSSL(g []byte) error {
	if len(g) == 0 || g[0] != 10 {
		return errors.New("unexpected server greeting")
	}
	i := bytes.IndexByte(g[1:], 0)
	if i < 0 {
		return errors.New("malformed server greeting")
	}
	off := 1 + i + 1 + 4 + 8 + 1 // version, NUL, connection id, scramble 1, filler
	if len(g) < off+2 {
		return errors.New("short server greeting")
	}
	caps := binary.LittleEndian.Uint16(g[off:])
	binary.LittleEndian.PutUint16(g[off:], caps&^uint16(capSSL))
	return nil
}

func handshakeUser(resp []byte) (string, error) {
	if len(resp) < handshakeFixedHeader+1 {
		return "", errors.New("short handshake response (TLS is not supported by the stand-in)")
	}
	rest := resp[handshakeFixedHeader:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", errors.New("malformed handshake response")
	}
	return string(rest[:i]), nil
}

// rewriteDB returns resp with its database field set to db.
func rewriteDB(resp []byte, db string) ([]byte, error) {
	caps := binary.LittleEndian.Uint32(resp)
	pos := handshakeFixedHeader
	i := bytes.IndexByte(resp[pos:], 0)
	if i < 0 {
		return nil, errors.New("malformed handshake response")
	}
	pos += i + 1
	// Auth response.
	switch {
	case caps&capPluginAuthLenenc != 0:
		n, w, err := lenenc(resp[pos:])
		if err != nil {
			return nil, err
		}
		pos += w + int(n)
	case caps&capSecureConnection != 0:
		if pos >= len(resp) {
			return nil, errors.New("malformed handshake response")
		}
		pos += 1 + int(resp[pos])
	default:
		j := bytes.IndexByte(resp[pos:], 0)
		if j < 0 {
			return nil, errors.New("malformed handshake response")
		}
		pos += j + 1
	}
	if pos > len(resp) {
		return nil, errors.New("malformed handshake response")
	}
	tail := resp[pos:]
	if caps&capConnectWithDB != 0 {
		j := bytes.IndexByte(tail, 0)
		if j < 0 {
			return nil, errors.New("malformed handshake response")
		}
		tail = tail[j+1:]
	}
	out := make([]byte, 0, len(resp)+len(db)+1)
	out = append(out, resp[:pos]...)
	binary.LittleEndian.PutUint32(out, caps|capConnectWithDB)
	out = append(out, db...)
	out = append(out, 0)
	out = append(out, tail...)
	return out, nil
}

func lenenc(b []byte) (n uint64, width int, err error) {
	if len(b) == 0 {
		return 0, 0, errors.New("malformed length-encoded integer")
	}
	switch {
	case b[0] < 0xfb:
		return uint64(b[0]), 1, nil
	case b[0] == 0xfc && len(b) >= 3:
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, nil
	case b[0] == 0xfd && len(b) >= 4:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, nil
	case b[0] == 0xfe && len(b) >= 9:
		return binary.LittleEndian.Uint64(b[1:]), 9, nil
	}
	return 0, 0, errors.New("malformed length-encoded integer")
}
