package psdeploy

import "testing"

func TestHostAddr(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "aws.connect.psdb.cloud", want: "aws.connect.psdb.cloud:3306"},
		{in: " aws.connect.psdb.cloud ", want: "aws.connect.psdb.cloud:3306"},
		{in: "127.0.0.1:4000", want: "127.0.0.1:4000"},
		{in: "localhost:", want: "localhost:3306"},
		{in: "mysql://localhost:4000/", want: "localhost:4000"},
		{in: "https://aws.connect.psdb.cloud", want: "aws.connect.psdb.cloud:3306"},
		{in: "mysql://user@edge.example:3307/shop?tls=true", want: "edge.example:3307"},
		{in: "[::1]:3307", want: "[::1]:3307"},
		{in: "[::1]", want: "[::1]:3306"},
		{in: "::1", want: "[::1]:3306"},
		{in: "", err: true},
		{in: "mysql://", err: true},
		{in: ":3306", err: true},
	}
	for _, tt := range tests {
		got, err := hostAddr(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("hostAddr(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
