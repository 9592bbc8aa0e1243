package ddlclause

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestClause(t *testing.T) {
	for _, tt := range []struct{ alg, lock, want string }{
		{"INSTANT", "NONE", ", ALGORITHM=INSTANT"}, {"INPLACE", "NONE", ", ALGORITHM=INPLACE, LOCK=NONE"},
		{"COPY", "SHARED", ", ALGORITHM=COPY, LOCK=SHARED"}, {"ONLINE", "NONE", ""}, {"", "", ""},
	} {
		if got := Clause(tt.alg, tt.lock); got != tt.want {
			t.Errorf("Clause(%s, %s) = %q, want %q", tt.alg, tt.lock, got, tt.want)
		}
	}
}

func TestInsert(t *testing.T) {
	for _, tt := range []struct{ ddl, want string }{
		{"ALTER TABLE `t` ADD COLUMN `c` int", "ALTER TABLE `t` ADD COLUMN `c` int, ALGORITHM=COPY, LOCK=SHARED"},
		{"ALTER TABLE `t` \nPARTITION BY HASH (`id`) PARTITIONS 4", "ALTER TABLE `t` ALGORITHM=COPY, LOCK=SHARED\nPARTITION BY HASH (`id`) PARTITIONS 4"},
		{"ALTER TABLE `t` ADD COLUMN `x` int\nPARTITION BY HASH (`id`) PARTITIONS 2", "ALTER TABLE `t` ADD COLUMN `x` int, ALGORITHM=COPY, LOCK=SHARED\nPARTITION BY HASH (`id`) PARTITIONS 2"},
		{"ALTER TABLE `t` REMOVE PARTITIONING", "ALTER TABLE `t` ALGORITHM=COPY, LOCK=SHARED REMOVE PARTITIONING"},
		{"ALTER TABLE `t` COMMENT 'x PARTITION BY y'", "ALTER TABLE `t` COMMENT 'x PARTITION BY y', ALGORITHM=COPY, LOCK=SHARED"},
	} {
		if got := Insert(tt.ddl, ", ALGORITHM=COPY, LOCK=SHARED"); got != tt.want {
			t.Errorf("Insert(%q)\n got %q\nwant %q", tt.ddl, got, tt.want)
		}
	}
}

func TestRefused(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &mysql.MySQLError{Number: 1846, Message: "ALGORITHM=INPLACE is not supported. Reason: Cannot change column type. Try ALGORITHM=COPY"})
	why, ok := Refused(err)
	if !ok || why != "Cannot change column type" {
		t.Fatalf("Refused = %q, %v", why, ok)
	}
	if why, ok := Refused(&mysql.MySQLError{Number: 1845, Message: "LOCK=NONE is not supported for this operation."}); !ok || why != "LOCK=NONE is not supported for this operation" {
		t.Fatalf("Refused(1845) = %q, %v", why, ok)
	}
	if _, ok := Refused(&mysql.MySQLError{Number: 1205}); ok {
		t.Fatal("1205 is not a refused clause")
	}
	if _, ok := Refused(errors.New("x")); ok {
		t.Fatal("a plain error is not a refused clause")
	}
}
