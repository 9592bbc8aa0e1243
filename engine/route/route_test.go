package route

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/engine"
)

// fake records the tasks it is given and can fail one.
type fake struct {
	name   string
	log    *[]string
	fail   int
	flight string
}

func (f *fake) Apply(_ context.Context, job engine.Job, _ engine.Recorder) error {
	for _, t := range job.Tasks {
		*f.log = append(*f.log, fmt.Sprintf("%s:%d", f.name, t.Seq))
		if t.Seq == f.fail {
			return &engine.TaskError{Seq: t.Seq, Err: errors.New("boom")}
		}
	}
	return nil
}
func (f *fake) Live(context.Context) (*sql.DB, error) { return nil, errors.New(f.name) }
func (f *fake) Close() error                          { *f.log = append(*f.log, "close "+f.name); return nil }
func (f *fake) InFlight(context.Context, engine.Job) (string, error) {
	return f.flight, nil
}

// TestRoute: ONLINE tasks go to the online engine, the others to the
// direct one, in plan order, in runs; a failure stops the job.
func TestRoute(t *testing.T) {
	tasks := []engine.Task{
		{Seq: 1, Algorithm: "INSTANT"}, {Seq: 2, Algorithm: "ONLINE"}, {Seq: 3, Algorithm: "ONLINE"},
		{Seq: 4, Algorithm: "INPLACE"}, {Seq: 5}, {Seq: 6, Algorithm: "ONLINE"},
	}
	for _, tt := range []struct {
		failOnline int
		want       string
	}{
		{0, "direct:1 online:2 online:3 direct:4 direct:5 online:6"},
		{3, "direct:1 online:2 online:3"},
	} {
		var log []string
		r := New(&fake{name: "direct", log: &log}, &fake{name: "online", log: &log, fail: tt.failOnline})
		err := r.Apply(context.Background(), engine.Job{Tasks: tasks}, nil)
		if got := strings.Join(log, " "); got != tt.want {
			t.Errorf("ran %q, want %q", got, tt.want)
		}
		if (err != nil) != (tt.failOnline != 0) {
			t.Errorf("Apply = %v", err)
		}
		if _, err := r.Live(context.Background()); err == nil || err.Error() != "direct" {
			t.Errorf("Live came from %v, want the direct engine", err)
		}
	}
	var log []string
	r := New(&fake{name: "direct", log: &log, flight: "a DDL runs"}, &fake{name: "online", log: &log, flight: "a copy runs"})
	if got, _ := r.InFlight(context.Background(), engine.Job{}); got != "a DDL runs; a copy runs" {
		t.Errorf("InFlight = %q", got)
	}
	r.Close()
	if got := strings.Join(log, " "); got != "close direct close online" {
		t.Errorf("Close: %q", got)
	}
}
