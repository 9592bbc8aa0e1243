package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrReportBusy is returned by LeaseReport when another reporter held the
// pull request's report lease for the whole wait.
var ErrReportBusy = errors.New("another reporter is writing this pull request to GitHub")

// ReportLease is the right to write one pull request's state to GitHub,
// held by one reporter at a time across every process sharing the ledger.
// It is a named lock of the ledger's server held by one connection, so the
// server drops it the moment its holder dies (process killed, connection
// killed, server restarted): no expiry to wait out.
type ReportLease struct {
	conn *sql.Conn
	name string
}

// reportLockName is the lock's name on the server: unique per ledger
// database and pull request, within the server's 64 characters.
const reportLockName = `CONCAT('tern_report.', LEFT(SHA2(CONCAT(DATABASE(), '/', ?), 256), 40))`

// LeaseReport takes the report lease of repo's pull request pr, waiting up
// to wait while another reporter holds it (ErrReportBusy after that). The
// caller reads the ledger after taking it, writes GitHub, and calls
// Release.
func (s *Store) LeaseReport(ctx context.Context, repo string, pr int, wait time.Duration) (*ReportLease, error) {
	key := fmt.Sprintf("%s#%d", strings.ToLower(repo), pr)
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("report lease of %s: %w", key, err)
	}
	var got sql.NullInt64
	secs := int(math.Ceil(wait.Seconds()))
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+reportLockName+`, ?)`, key, secs).Scan(&got); err != nil {
		conn.Close()
		return nil, fmt.Errorf("report lease of %s: %w", key, err)
	}
	if !got.Valid || got.Int64 != 1 {
		conn.Close()
		return nil, fmt.Errorf("report lease of %s: %w", key, ErrReportBusy)
	}
	return &ReportLease{conn: conn, name: key}, nil
}

// Release gives the lease back. held is false when the lease was lost
// while the caller worked (its connection died or was killed, the server
// restarted): another reporter may then have written the same pull request
// meanwhile, and the caller must report again. The error says why it was
// lost.
func (l *ReportLease) Release(ctx context.Context) (held bool, err error) {
	defer l.conn.Close()
	var got sql.NullInt64
	if err := l.conn.QueryRowContext(ctx, `SELECT RELEASE_LOCK(`+reportLockName+`)`, l.name).Scan(&got); err != nil {
		return false, fmt.Errorf("release report lease of %s: %w", l.name, err)
	}
	if !got.Valid || got.Int64 != 1 {
		return false, fmt.Errorf("release report lease of %s: no longer held", l.name)
	}
	return true, nil
}
