package redact

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAx1\nQ2lvbmF0aGFuIHdhcw==\n-----END RSA PRIVATE KEY-----\n"
	tests := []struct{ name, in, want string }{
		{"dsn password", "open root:hunter22@tcp(db:3306)/x", "open root:***@tcp(db:3306)/x"},
		{"token twice", "token pscale_tkn_abc and pscale_tkn_abc", "token *** and ***"},
		{"whole pem", "key=" + pem, "key=***"},
		{"one pem line", "bad line MIIEpAIBAAKCAQEAx1 in key", "bad line *** in key"},
		{"nothing secret", "apply 12 completed", "apply 12 completed"},
	}
	secrets := []string{"hunter22", "pscale_tkn_abc", pem, ""}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, secrets)
			n, err := w.Write([]byte(tt.in))
			if err != nil || n != len(tt.in) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if buf.String() != tt.want {
				t.Errorf("got %q, want %q", buf.String(), tt.want)
			}
		})
	}
}

func TestSlogThroughWriter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(NewWriter(&buf, []string{"s3cr3t-pass"}), nil))
	log.Error("connect failed", "dsn", "tern:s3cr3t-pass@tcp(h:3306)/tern", "apply", 7)
	if strings.Contains(buf.String(), "s3cr3t-pass") || !strings.Contains(buf.String(), `"apply":7`) {
		t.Fatalf("log line: %s", buf.String())
	}
}
