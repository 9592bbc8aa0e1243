package bot

import (
	"errors"
	"testing"
)

func TestParseCommand(t *testing.T) {
	cases := []struct {
		body    string
		ok      bool
		want    Command
		wantErr string
	}{
		{body: "looks good to me", ok: false},
		{body: "/ternary thing", ok: false},
		{body: "please run\n/tern plan", ok: false},
		{body: "", ok: false},
		{body: "/tern", ok: true, want: Command{Name: "help"}},
		{body: "\n\n  /tern plan  \nthanks", ok: true, want: Command{Name: "plan"}},
		{body: "/tern plan -d shop -e staging", ok: true, want: Command{Name: "plan", Database: "shop", Environment: "staging"}},
		{body: "/tern apply -e staging", ok: true, want: Command{Name: "apply", Environment: "staging"}},
		{body: "/tern apply --env=production --database shop --allow-unsafe", ok: true, want: Command{Name: "apply", Database: "shop", Environment: "production", AllowUnsafe: true}},
		{body: "/tern unlock", ok: true, want: Command{Name: "unlock"}},
		{body: "/tern unlock -e staging", ok: true, want: Command{Name: "unlock", Environment: "staging"}},
		{body: "/tern retry -e staging -d shop", ok: true, want: Command{Name: "retry", Database: "shop", Environment: "staging"}},
		{body: "/tern cancel -e staging", ok: true, want: Command{Name: "cancel", Environment: "staging"}},
		{body: "/tern status", ok: true, want: Command{Name: "status"}},
		{body: "/tern help", ok: true, want: Command{Name: "help"}},
		{body: "/tern aply -e staging", ok: true, wantErr: `unknown command "aply"`},
		{body: "/tern apply", ok: true, wantErr: `"apply" needs an environment: -e ENV`},
		{body: "/tern apply -e", ok: true, wantErr: `flag "-e" needs a value`},
		{body: "/tern apply -e -d shop", ok: true, wantErr: `flag "-e" needs a value`},
		{body: "/tern apply -e staging --force", ok: true, wantErr: `unknown flag "--force" for "apply"`},
		{body: "/tern plan --allow-unsafe", ok: true, wantErr: `flag "--allow-unsafe" is not accepted by "plan"`},
		{body: "/tern apply -e staging -e production", ok: true, wantErr: `flag "-e" given twice`},
		{body: "/tern status now", ok: true, wantErr: `unexpected argument "now" for "status"`},
		{body: "/tern retry", ok: true, wantErr: `"retry" needs an environment: -e ENV`},
		{body: "/tern cancel -d shop", ok: true, wantErr: `"cancel" needs an environment: -e ENV`},
		{body: "/tern apply -e staging --allow-unsafe=yes", ok: true, wantErr: `flag "--allow-unsafe" takes no value`},
		{body: "/tern apply -e staging --allow-blocking", ok: true, want: Command{Name: "apply", Environment: "staging", AllowBlocking: true}},
		{body: "/tern apply -e staging --allow-blocking --allow-unsafe", ok: true, want: Command{Name: "apply", Environment: "staging", AllowBlocking: true, AllowUnsafe: true}},
		{body: "/tern apply -e staging --allow-blocking=1", ok: true, wantErr: `flag "--allow-blocking" takes no value`},
		{body: "/tern plan --allow-blocking", ok: true, wantErr: `flag "--allow-blocking" is not accepted by "plan"`},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			cmd, ok, err := ParseCommand(c.body)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if c.wantErr != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Msg != c.wantErr {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !ok {
				if cmd != nil {
					t.Fatalf("not a command but got %+v", cmd)
				}
				return
			}
			got := *cmd
			got.Line = ""
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
