package ptosc

import (
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
)

func TestAlterSpec(t *testing.T) {
	for _, tt := range []struct {
		ddl, table, want, err string
	}{
		{"ALTER TABLE `t` MODIFY COLUMN `v` bigint NOT NULL", "t", "MODIFY COLUMN `v` bigint NOT NULL", ""},
		{"alter table t\n  ADD COLUMN x int;", "t", "ADD COLUMN x int", ""},
		{"ALTER TABLE `we``ird` DROP COLUMN a", "we`ird", "DROP COLUMN a", ""},
		{"ALTER TABLE `t`", "t", "", "no change after the table name"},
		{"ALTER TABLE `u` DROP COLUMN a", "t", "", "changes table u, not t"},
		{"CREATE TABLE t (id int)", "t", "", "not an ALTER TABLE"},
	} {
		got, err := alterSpec(tt.ddl, tt.table)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("alterSpec(%q) err = %v, want %q", tt.ddl, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("alterSpec(%q) = %q, %v; want %q", tt.ddl, got, err, tt.want)
		}
	}
}

// TestNames: every object of a task is named after its apply and task,
// starts with _tern_ (reserved, and left out of plans), and fits MySQL's
// 64-character limit however long the table's name.
func TestNames(t *testing.T) {
	n := namesFor("shop", "orders", 12, 3)
	if n.shadow != "_tern_12_3_new_orders" || n.old != "_tern_12_3_old_orders" {
		t.Errorf("names = %+v", n)
	}
	if got := strings.Join(n.triggers, ","); got != "pt_osc_shop_orders_ins,pt_osc_shop_orders_upd,pt_osc_shop_orders_del" {
		t.Errorf("triggers = %s", got)
	}
	long := strings.Repeat("é", 64)
	n = namesFor(strings.Repeat("d", 64), long, 123456789, 99)
	for _, s := range append([]string{n.shadow, n.old, n.lock}, n.triggers...) {
		if len([]rune(s)) > 64 {
			t.Errorf("%q is %d characters", s, len([]rune(s)))
		}
	}
	if !strings.HasPrefix(n.shadow, "_tern_123456789_99_new_é") {
		t.Errorf("shadow %q", n.shadow)
	}
	if a, b := namesFor("d", "t", 1, 1).lock, namesFor("d", "u", 1, 1).lock; a == b {
		t.Errorf("two tables share the lock %q", a)
	}
	if a, b := namesFor("d", "t", 1, 1).lock, namesFor("d", "t", 2, 5).lock; a != b {
		t.Errorf("one table has two locks %q, %q", a, b)
	}
}

func TestParseProgress(t *testing.T) {
	for _, tt := range []struct {
		line string
		pct  float64
		left time.Duration
		ok   bool
	}{
		{"Copying `shop`.`orders`:  43% 00:40 remain", 43, 40 * time.Second, true},
		{"Copying `shop`.`orders`:   7% 01:02:03 remain", 7, time.Hour + 2*time.Minute + 3*time.Second, true},
		{"Copying `shop`.`orders`:  99% 1+02:00:00 remain", 99, 26 * time.Hour, true},
		{"2026-12-03T06:32:31 Copied rows OK.", 0, 0, false},
	} {
		p, ok := parseProgress(tt.line)
		if ok != tt.ok || p.Percent != tt.pct || p.Remaining != tt.left {
			t.Errorf("parseProgress(%q) = %+v, %v", tt.line, p, ok)
		}
	}
}

// TestClassify: what the tool says on failure decides whether the apply is
// retried, and the message says what to do.
func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		out, class string
		retry      bool
		says       string
	}{
		{"Error copying rows from `d`.`t` to `d`.`_tern_1_1_new_t`: DBD::mysql::st execute failed: Lock wait timeout exceeded; try restarting transaction", engine.ClassLockWaitTimeout, true, "retried"},
		{"DBD::mysql::st execute failed: Deadlock found when trying to get lock", engine.ClassDeadlock, true, "retried"},
		{"Cannot connect to MySQL: DBI connect(';host=h;port=1;mysql_read_default_group=client','',...) failed: Can't connect to MySQL server on 'h' (111)", engine.ClassConnectionLost, true, "retried"},
		{"The table `d`.`t` has triggers.  This tool needs to create its own triggers, so the table cannot already have triggers.", engine.ClassUnsupported, false, "/tern plan"},
		{"The new table `d`.`_tern_1_1_new_t` does not have a PRIMARY KEY or a unique index which is required for the DELETE trigger.", engine.ClassUnsupported, false, "primary key"},
		{"You are trying to add an unique key. This can result in data loss if the data is not unique.", engine.ClassUnsupported, false, "unique"},
		{"DBD::mysql::st execute failed: TRIGGER command denied to user 'tern'@'localhost' for table 't'", engine.ClassPermission, false, "TRIGGER"},
		{"Threads_running=80 exceeds its critical threshold 50", classServerLoad, true, "busy"},
		{`DBD::mysql::db selectall_arrayref failed: Error on delete of '/tmp/#sql-temptable-ee5-79d8-3ba.MAI' (Errcode: 2 "No such file or directory")`, classServerIO, true, "retried"},
		{"something nobody expected", engine.ClassUnknown, false, "something nobody expected"},
	} {
		err := classify(tt.out, 255)
		if engine.Class(err) != tt.class || engine.IsRetryable(err) != tt.retry || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("classify(%q) = %v (class %s, retryable %v); want %s, %v, saying %q", tt.out, err, engine.Class(err), engine.IsRetryable(err), tt.class, tt.retry, tt.says)
		}
	}
}

func TestOptionFile(t *testing.T) {
	got := optionFile("tern", `p"a\ss`)
	want := "[client]\nuser=\"tern\"\npassword=\"p\\\"a\\\\ss\"\n"
	if got != want {
		t.Errorf("optionFile = %q, want %q", got, want)
	}
}

// TestArgs: the tool is told where the server is (TCP or socket) and where
// the option file is, never the user or password, and only the change.
func TestArgs(t *testing.T) {
	needTool(t)
	for _, tt := range []struct{ dsn, where string }{
		{"alice:s3cret@tcp(db.example:3307)/shop", ",h=db.example,P=3307"},
		{"alice:s3cret@tcp([::1]:3306)/shop", ",h=::1,P=3306"},
		{"alice:s3cret@unix(/run/mysqld/mysqld.sock)/shop", ",S=/run/mysqld/mysqld.sock"},
	} {
		e, err := New(config.MySQL{DSN: tt.dsn}, "", Options{ChunkSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(e.args(namesFor("shop", "t", 1, 2), "t", "MODIFY `v` bigint", "/tmp/x/client.cnf"), " ")
		e.Close()
		if strings.Contains(args, "s3cret") || strings.Contains(args, "alice") {
			t.Errorf("args name the password or user: %s", args)
		}
		for _, want := range []string{"--alter MODIFY `v` bigint ", "--new-table-name=_tern_1_2_new_t", "--no-swap-tables", "--no-version-check",
			"--chunk-size=10 --chunk-time=0", "F=/tmp/x/client.cnf,D=shop,t=t" + tt.where} {
			if !strings.Contains(args, want) {
				t.Errorf("args %s: no %q", args, want)
			}
		}
	}
	if _, err := New(config.MySQL{DSN: "alice:s3cret@tcp(h:1)/shop?tls=true"}, "", Options{}); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("a TLS DSN: %v", err)
	}
	if _, err := New(config.MySQL{DSN: "alice:s3cret@tcp(h:1)/shop"}, "", Options{Tool: "no-such-pt-osc"}); err == nil || !strings.Contains(err.Error(), "percona-toolkit") {
		t.Errorf("a missing tool: %v", err)
	}
}
