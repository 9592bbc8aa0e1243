package fakeps

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/planetscale/planetscale-go/planetscale"
)

// branch is a PlanetScale branch backed by a server database.
type branch struct {
	ID         string
	Name       string
	Parent     string
	DB         string
	Ready      bool
	Production bool
	polls      int
	CreatedAt  time.Time
	// base holds the parent's tables (normalized CREATE TABLE) when the
	// branch was made, to detect schema conflicts.
	base map[string]string
}

func (b *branch) api() *planetscale.DatabaseBranch {
	return &planetscale.DatabaseBranch{
		ID: b.ID, Name: b.Name, ParentBranch: b.Parent, Ready: b.Ready,
		Production: b.Production, CreatedAt: b.CreatedAt, UpdatedAt: b.CreatedAt,
		Region: planetscale.Region{Slug: "local", Name: "Local"},
		Actor:  planetscale.Actor{Type: "ServiceToken", Name: "tern"},
	}
}

// password is a branch password backed by a server user.
type password struct {
	ID        string
	Name      string
	Branch    string
	User      string
	Role      string
	CreatedAt time.Time
}

var branchName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (s *Server) createBranch(r *http.Request, body []byte) (int, any) {
	var req planetscale.CreateDatabaseBranchRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, "invalid JSON body"
	}
	if !branchName.MatchString(req.Name) {
		return http.StatusUnprocessableEntity, "Name must be lowercase letters, digits and dashes"
	}
	if _, ok := s.branches[req.Name]; ok {
		return http.StatusUnprocessableEntity, "Name has already been taken"
	}
	parent, ok := s.branches[req.ParentBranch]
	if !ok {
		return http.StatusNotFound, "Parent branch not found"
	}
	s.branchSeq++
	b := &branch{
		ID: randHex(6), Name: req.Name, Parent: parent.Name,
		DB:        fmt.Sprintf("%s_b%d", s.opts.Prefix, s.branchSeq),
		CreatedAt: time.Now().UTC(),
	}
	ctx := r.Context()
	base, err := s.copySchema(ctx, parent.DB, b.DB)
	if err != nil {
		s.log.Error("fakeps: create branch database", "branch", b.Name, "err", err)
		s.admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+quote(b.DB))
		return http.StatusInternalServerError, "could not create branch"
	}
	b.base = base
	b.Ready = s.opts.BranchReadyAfter == 0 && !s.hangBranch
	s.branches[b.Name] = b
	return http.StatusCreated, b.api()
}

func (s *Server) getBranch(r *http.Request, _ []byte) (int, any) {
	b, ok := s.branches[r.PathValue("branch")]
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	if !b.Ready && !s.hangBranch {
		if b.polls >= s.opts.BranchReadyAfter {
			b.Ready = true
		}
		b.polls++
	}
	return http.StatusOK, b.api()
}

func (s *Server) deleteBranch(r *http.Request, _ []byte) (int, any) {
	b, ok := s.branches[r.PathValue("branch")]
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	if b.Production {
		return http.StatusBadRequest, "A production branch cannot be deleted"
	}
	ctx := r.Context()
	for id, p := range s.passwords {
		if p.Branch == b.Name {
			if err := s.dropUser(ctx, p.User); err != nil {
				return http.StatusInternalServerError, "could not delete branch"
			}
			delete(s.passwords, id)
		}
	}
	if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quote(b.DB)); err != nil {
		s.log.Error("fakeps: drop branch database", "branch", b.Name, "err", err)
		return http.StatusInternalServerError, "could not delete branch"
	}
	delete(s.branches, b.Name)
	return http.StatusNoContent, nil
}

// grants per password role.
var roleGrants = map[string]string{
	"reader":     "SELECT, SHOW VIEW",
	"writer":     "SELECT, INSERT, UPDATE, DELETE",
	"readwriter": "SELECT, INSERT, UPDATE, DELETE, SHOW VIEW",
	"admin":      "ALL PRIVILEGES",
}

func (s *Server) createPassword(r *http.Request, body []byte) (int, any) {
	var req planetscale.DatabaseBranchPasswordRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return http.StatusBadRequest, "invalid JSON body"
		}
	}
	b, ok := s.branches[r.PathValue("branch")]
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	if !b.Ready {
		return http.StatusUnprocessableEntity, "Branch is not ready"
	}
	if req.Role == "" {
		req.Role = "admin"
	}
	grants, ok := roleGrants[req.Role]
	if !ok {
		return http.StatusBadRequest, "Unknown role"
	}
	p := &password{
		ID: randHex(6), Name: req.Name, Branch: b.Name, Role: req.Role,
		User: "ps_" + randHex(8), CreatedAt: time.Now().UTC(),
	}
	plain := "pscale_pw_" + randHex(16)
	ctx := r.Context()
	// The password is hex: safe to inline. Errors below never carry it.
	if _, err := s.admin.ExecContext(ctx, "CREATE USER "+userSpec(p.User)+" IDENTIFIED BY '"+plain+"'"); err != nil {
		s.log.Error("fakeps: create password user failed", "branch", b.Name)
		return http.StatusInternalServerError, "could not create password"
	}
	s.users[p.User] = b.DB
	if _, err := s.admin.ExecContext(ctx, "GRANT "+grants+" ON "+quote(b.DB)+".* TO "+userSpec(p.User)); err != nil {
		s.log.Error("fakeps: grant password user", "branch", b.Name, "err", err)
		s.dropUser(ctx, p.User)
		return http.StatusInternalServerError, "could not create password"
	}
	s.passwords[p.ID] = p
	return http.StatusCreated, &planetscale.DatabaseBranchPassword{
		PublicID: p.ID, Name: p.Name, Hostname: s.hostURL(), Username: p.User,
		Role: p.Role, Branch: *b.api(), CreatedAt: p.CreatedAt, PlainText: plain,
		Actor: &planetscale.Actor{Type: "ServiceToken", Name: "tern"},
	}
}

// hostURL is a password's access_host_url in the form Options.HostForm
// asks for.
func (s *Server) hostURL() string {
	_, port, _ := net.SplitHostPort(s.proxy.Addr())
	switch s.opts.HostForm {
	case "name":
		return net.JoinHostPort("localhost", port)
	case "url":
		return "mysql://" + net.JoinHostPort("localhost", port) + "/"
	}
	return s.proxy.Addr()
}

func (s *Server) deletePassword(r *http.Request, _ []byte) (int, any) {
	p, ok := s.passwords[r.PathValue("id")]
	if !ok || p.Branch != r.PathValue("branch") {
		return http.StatusNotFound, "Not Found"
	}
	if err := s.dropUser(r.Context(), p.User); err != nil {
		return http.StatusInternalServerError, "could not delete password"
	}
	delete(s.passwords, p.ID)
	return http.StatusNoContent, nil
}

func (s *Server) dropUser(ctx context.Context, user string) error {
	if _, err := s.admin.ExecContext(ctx, "DROP USER IF EXISTS "+userSpec(user)); err != nil {
		s.log.Error("fakeps: drop password user", "err", err)
		return err
	}
	delete(s.users, user)
	return nil
}

// tables returns a database's base tables as normalized CREATE TABLE
// statements, by name.
func (s *Server) tables(ctx context.Context, db string) (map[string]string, error) {
	rows, err := s.admin.QueryContext(ctx,
		"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", db)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", db, err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		var name, create string
		if err := s.admin.QueryRowContext(ctx, "SHOW CREATE TABLE "+quote(db)+"."+quote(n)).Scan(&name, &create); err != nil {
			return nil, fmt.Errorf("show create table %s.%s: %w", db, n, err)
		}
		out[n] = normalize(create)
	}
	return out, nil
}

var autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

func normalize(create string) string { return autoIncrement.ReplaceAllString(create, "") }

// copySchema creates database to with from's tables (no rows) and returns
// from's tables.
func (s *Server) copySchema(ctx context.Context, from, to string) (map[string]string, error) {
	tables, err := s.tables(ctx, from)
	if err != nil {
		return nil, err
	}
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+quote(to)+" CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	stmts := make([]string, 0, len(tables))
	for _, c := range tables {
		stmts = append(stmts, c)
	}
	if err := s.execIn(ctx, to, stmts); err != nil {
		return nil, err
	}
	return tables, nil
}

// execIn runs stmts in order on one connection whose default database is
// db, with foreign key checks off.
func (s *Server) execIn(ctx context.Context, db string, stmts []string) error {
	conn, err := s.admin.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "USE "+quote(db)); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return err
	}
	// Restore the session before it goes back to the pool.
	defer conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION foreign_key_checks = 1")
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	return nil
}

func firstLine(q string) string {
	for i, c := range q {
		if c == '\n' {
			return q[:i]
		}
	}
	return q
}
