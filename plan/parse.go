package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	vtlog "vitess.io/vitess/go/vt/log"
	"vitess.io/vitess/go/vt/schemadiff"
	"vitess.io/vitess/go/vt/sqlparser"
)

func init() {
	// vitess logs every INSTANT-DDL decision and every lenient parse at
	// INFO/WARN to stderr through a process-wide logger; tern reports what
	// matters itself.
	vtlog.SwapLogger(slog.New(slog.DiscardHandler))
}

// mysqlVersion is the server version vitess parses and judges INSTANT DDL
// eligibility for.
const mysqlVersion = "8.0.40"

// allowedEngines are the storage engines a desired table may use: each
// keeps its data inside the database's own files.
var allowedEngines = []string{"innodb", "myisam", "aria", "memory"}

// newParser returns a vitess SQL parser for mysqlVersion.
func newParser() *sqlparser.Parser {
	p, err := sqlparser.New(sqlparser.Options{MySQLServerVersion: mysqlVersion})
	if err != nil {
		panic(fmt.Sprintf("vitess parser for %s: %v", mysqlVersion, err)) // a constant: cannot fail
	}
	return p
}

// LoadDir reads every *.sql file under root/dir, recursively, in sorted
// order, and parses them with l.Parse; a file over l's size limit is
// refused before it is read. File paths in errors are relative to root.
// An empty or missing directory is an error: planning against it would
// drop every table.
func (l Limits) LoadDir(root, dir string) (*Desired, error) {
	dir = path.Clean(filepath.ToSlash(dir))
	base := filepath.Join(root, filepath.FromSlash(dir))
	if _, err := os.Stat(base); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("schema_dir %s does not exist (check its spelling in tern.yaml)", dir)
	}
	var files []File
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == base && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".sql") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil {
			if err := l.withDefaults().checkFile(filepath.ToSlash(rel), info.Size()); err != nil {
				return err
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, File{Path: filepath.ToSlash(rel), Data: b})
		return nil
	})
	var le *LimitError
	if errors.As(err, &le) {
		return nil, le
	}
	if err != nil {
		return nil, fmt.Errorf("read schema files in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.sql files in %s: refusing to plan (it would drop every table)", dir)
	}
	return l.Parse(files)
}

// parse parses and vets the desired schema files. They may hold only
// CREATE TABLE statements and comments; anything else, SQL that does not
// parse, a table defined twice, and constructs that reach outside the
// database (CONTRACT §3) are refused with "path:line: reason". Nothing here
// touches a server.
//
// count, when not nil, is told how many statements the files split into,
// before any is vetted; its error stops the parse.
func parse(files []File, count func(statements int64) error) (*Desired, error) {
	files = slices.Clone(files)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	p := newParser()
	// Each file is split, then vetted, on its own, in parallel; the
	// results are then taken in file order, so errors and tables keep that
	// order.
	type vetted struct {
		st        rawStatement
		ct        *sqlparser.CreateTable
		line      int
		asWritten bool
		err       error
	}
	perFile := make([][]vetted, len(files))
	splitErrs := make([]error, len(files))
	split := make([][]rawStatement, len(files))
	parallel(len(files), func(i int) {
		split[i], splitErrs[i] = splitStatements(string(files[i].Data))
	})
	if count != nil {
		var n int64
		for _, stmts := range split {
			n += int64(len(stmts))
		}
		if err := count(n); err != nil {
			return nil, err
		}
	}
	parallel(len(files), func(i int) {
		out := make([]vetted, len(split[i]))
		for j, st := range split[i] {
			out[j].st = st
			out[j].ct, out[j].line, out[j].asWritten, out[j].err = vetStatementForm(p, st)
		}
		perFile[i] = out
	})
	var (
		tables []Table
		parsed []*sqlparser.CreateTable
		errs   []error
		seen   = map[string]Table{}
		// written holds the tables whose parse is of their text as
		// written, for the planner to reuse.
		written = map[string]*sqlparser.CreateTable{}
	)
	for i, f := range files {
		if err := splitErrs[i]; err != nil {
			errs = append(errs, fmt.Errorf("%s:%w", f.Path, err))
			continue
		}
		for _, v := range perFile[i] {
			ct, st := v.ct, v.st
			if v.err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %w", f.Path, v.line, v.err))
				continue
			}
			if v.asWritten {
				written[ct.Table.Name.String()] = ct
			}
			t := Table{Name: ct.Table.Name.String(), File: f.Path, Line: st.Line, SQL: st.Text}
			key := strings.ToLower(t.Name)
			if prev, ok := seen[key]; ok {
				errs = append(errs, fmt.Errorf("%s:%d: table %s is defined twice: also in %s:%d", t.File, t.Line, t.Name, prev.File, prev.Line))
				continue
			}
			seen[key] = t
			tables = append(tables, t)
			parsed = append(parsed, ct)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = f.Path
		}
		return nil, fmt.Errorf("no CREATE TABLE statements in %s: refusing to plan (it would drop every table)", strings.Join(names, ", "))
	}
	d, err := newDesired(tables, parsed)
	if err != nil {
		return nil, err
	}
	d.written = written
	return d, nil
}

// newDesired sorts tables; parsed[i] is tables[i] as vetStatement parsed
// it. The hash is computed when first asked for (Desired.Hash): a plan
// printed as text never needs it.
func newDesired(tables []Table, parsed []*sqlparser.CreateTable) (*Desired, error) {
	order := make([]int, len(tables))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return tables[order[i]].Name < tables[order[j]].Name })
	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	sorted := make([]Table, len(tables))
	sortedParsed := make([]*sqlparser.CreateTable, len(tables))
	for k, i := range order {
		sorted[k], sortedParsed[k] = tables[i], parsed[i]
	}
	d := &Desired{Tables: sorted}
	d.hash = sync.OnceValue(func() string { return desiredHash(env, sorted, sortedParsed) })
	return d, nil
}

// desiredHash hashes the normalized forms of tables (parsed[i] is
// tables[i] parsed; neither is modified).
func desiredHash(env *schemadiff.Environment, tables []Table, parsed []*sqlparser.CreateTable) string {
	forms := make([]string, len(tables))
	parallel(len(tables), func(k int) {
		if _, lenient := vitessForm(tables[k].SQL); lenient {
			// vitess's form may merge spellings the server keeps apart.
			forms[k] = tables[k].SQL
		} else {
			forms[k] = normalized(env, parsed[k])
		}
	})
	h := sha256.New()
	for _, f := range forms {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// vetTables parses and vets tables again, each of which must be exactly
// one statement.
func vetTables(p *sqlparser.Parser, tables []Table) ([]*sqlparser.CreateTable, error) {
	out := make([]*sqlparser.CreateTable, len(tables))
	for i, t := range tables {
		st, err := splitStatements(t.SQL)
		if err != nil || len(st) != 1 {
			return nil, fmt.Errorf("table %s: statement does not split into exactly one", t.Name)
		}
		ct, _, err := vetStatement(p, st[0])
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		out[i] = ct
	}
	return out, nil
}

// normalized renders a parsed CREATE TABLE canonically, without comments,
// after schemadiff's normalization (type case, display widths, implied
// NULLs), so that spellings of the same table hash alike.
func normalized(env *schemadiff.Environment, ct *sqlparser.CreateTable) string {
	c := sqlparser.Clone(ct)
	c.Comments = nil
	if e, err := schemadiff.NewCreateTableEntity(env, c); err == nil {
		return e.Create().CanonicalStatementString()
	}
	return sqlparser.CanonicalString(c)
}

// vetStatement parses one statement and checks that it is a plain CREATE
// TABLE. It returns the line the problem is on.
func vetStatement(p *sqlparser.Parser, st rawStatement) (*sqlparser.CreateTable, int, error) {
	ct, line, _, err := vetStatementForm(p, st)
	return ct, line, err
}

// vetStatementForm is vetStatement; asWritten reports that ct is the
// parse of the statement's text as written (no executable comment, no
// vitess form).
func vetStatementForm(p *sqlparser.Parser, st rawStatement) (ct *sqlparser.CreateTable, line int, asWritten bool, err error) {
	var ok bool
	if line, err := vetHostileText(st); err != nil {
		return nil, line, false, err
	}
	if kind := statementKind(st.Expanded); kind != "CREATE TABLE" {
		return nil, st.Line, false, fmt.Errorf("only CREATE TABLE statements are allowed, found %s", kind)
	}
	stmt, err := p.ParseStrictDDL(st.Expanded)
	asWritten = err == nil && st.Expanded == st.Text
	if err != nil {
		// Syntax the servers accept but vitess does not know is read in
		// vitess's form; the shadow server judges the text as written.
		if form, ok := vitessForm(st.Expanded); ok {
			if s2, err2 := p.ParseStrictDDL(form); err2 == nil {
				stmt, err = s2, nil
			}
		}
	}
	if err != nil {
		line := st.Line
		var pe sqlparser.PositionedErr
		if errors.As(err, &pe) && pe.Pos > 0 {
			// Pos is just past the offending token.
			pos := max(0, min(pe.Pos-len(pe.Near)-1, len(st.Expanded)))
			line += strings.Count(st.Expanded[:pos], "\n")
			if pe.Near != "" {
				return nil, line, false, fmt.Errorf("syntax error near %q", pe.Near)
			}
			return nil, line, false, errors.New("syntax error")
		}
		return nil, line, false, fmt.Errorf("does not parse: %v", err)
	}
	ct, ok = stmt.(*sqlparser.CreateTable)
	if !ok {
		return nil, st.Line, false, fmt.Errorf("only CREATE TABLE statements are allowed, found %s", statementKind(st.Expanded))
	}
	if err := vetCreateTable(ct); err != nil {
		return nil, st.Line, false, err
	}
	if line, err := vetExpressions(ct, st); err != nil {
		return nil, line, false, err
	}
	return ct, st.Line, asWritten, nil
}

// statementKind names a statement by its first keywords: INSERT, DROP
// TABLE, CREATE VIEW.
func statementKind(sql string) string {
	// Word by word: only the first few words matter, and a statement is
	// as long as its table.
	first := ""
	for w := range strings.FieldsSeq(sql) {
		w = strings.ToUpper(w)
		if first == "" {
			first = w
			switch w {
			case "CREATE", "DROP", "ALTER":
				continue
			}
			return strings.TrimRight(w, "(")
		}
		switch w {
		case "OR", "REPLACE", "TEMPORARY", "UNIQUE", "FULLTEXT", "SPATIAL", "ONLINE", "IGNORE", "IF", "NOT", "EXISTS":
			continue
		}
		if strings.ContainsAny(w, "=@`'") {
			continue
		}
		return first + " " + strings.TrimRight(w, "(")
	}
	if first == "" {
		return "an empty statement"
	}
	return first
}

// vetCreateTable refuses the CREATE TABLE forms of CONTRACT §3.
func vetCreateTable(ct *sqlparser.CreateTable) error {
	name := ct.Table.Name.String()
	switch {
	case ct.Temp:
		return fmt.Errorf("CREATE TEMPORARY TABLE %s: temporary tables are not allowed", name)
	case ct.OptLike != nil:
		return fmt.Errorf("CREATE TABLE %s LIKE: not allowed; write the table's columns out", name)
	case ct.Select != nil:
		return fmt.Errorf("CREATE TABLE %s ... SELECT: not allowed; schema files hold plain table definitions", name)
	case !ct.Table.Qualifier.IsEmpty():
		return fmt.Errorf("table %s.%s: a schema-qualified name is not allowed; name the table alone", ct.Table.Qualifier.String(), name)
	case ct.TableSpec == nil:
		return fmt.Errorf("CREATE TABLE %s has no column definitions", name)
	case strings.HasPrefix(strings.ToLower(name), "_tern_"):
		return fmt.Errorf("table %s: names starting with _tern_ are reserved for tern", name)
	}
	for _, o := range ct.TableSpec.Options {
		switch strings.ToLower(o.Name) {
		case "engine":
			if !slices.Contains(allowedEngines, strings.ToLower(o.String)) {
				return fmt.Errorf("table %s: ENGINE=%s is not allowed (allowed: InnoDB, MyISAM, Aria, MEMORY)", name, o.String)
			}
		case "data directory", "index directory":
			return fmt.Errorf("table %s: %s is not allowed", name, strings.ToUpper(o.Name))
		case "connection":
			return fmt.Errorf("table %s: CONNECTION is not allowed", name)
		case "union":
			return fmt.Errorf("table %s: UNION (MERGE tables) is not allowed", name)
		case "tablespace":
			return fmt.Errorf("table %s: TABLESPACE is not allowed", name)
		}
	}
	if po := ct.TableSpec.PartitionOption; po != nil {
		for _, d := range po.Definitions {
			if err := vetPartition(name, d.Name.String(), d.Options); err != nil {
				return err
			}
		}
	}
	for _, c := range ct.TableSpec.Constraints {
		if fk, ok := c.Details.(*sqlparser.ForeignKeyDefinition); ok {
			if err := vetReference(name, fk.ReferenceDefinition); err != nil {
				return err
			}
		}
	}
	for _, col := range ct.TableSpec.Columns {
		if col.Type != nil && col.Type.Options != nil {
			if err := vetReference(name, col.Type.Options.Reference); err != nil {
				return err
			}
		}
	}
	return nil
}

func vetPartition(table, part string, o *sqlparser.PartitionDefinitionOptions) error {
	if o == nil {
		return nil
	}
	if o.DataDirectory != nil || o.IndexDirectory != nil {
		return fmt.Errorf("table %s: partition %s: DATA DIRECTORY / INDEX DIRECTORY is not allowed", table, part)
	}
	if o.Engine != nil && !slices.Contains(allowedEngines, strings.ToLower(o.Engine.Name)) {
		return fmt.Errorf("table %s: partition %s: ENGINE=%s is not allowed (allowed: InnoDB, MyISAM, Aria, MEMORY)", table, part, o.Engine.Name)
	}
	if o.TableSpace != "" {
		return fmt.Errorf("table %s: partition %s: TABLESPACE is not allowed", table, part)
	}
	for _, s := range o.SubPartitionDefinitions {
		so := s.Options
		if so == nil {
			continue
		}
		if so.DataDirectory != nil || so.IndexDirectory != nil {
			return fmt.Errorf("table %s: subpartition %s: DATA DIRECTORY / INDEX DIRECTORY is not allowed", table, s.Name.String())
		}
		if so.Engine != nil && !slices.Contains(allowedEngines, strings.ToLower(so.Engine.Name)) {
			return fmt.Errorf("table %s: subpartition %s: ENGINE=%s is not allowed", table, s.Name.String(), so.Engine.Name)
		}
		if so.TableSpace != "" {
			return fmt.Errorf("table %s: subpartition %s: TABLESPACE is not allowed", table, s.Name.String())
		}
	}
	return nil
}

func vetReference(table string, r *sqlparser.ReferenceDefinition) error {
	if r == nil || r.ReferencedTable.Qualifier.IsEmpty() {
		return nil
	}
	return fmt.Errorf("table %s: foreign key to %s.%s: references to another schema are not allowed", table,
		r.ReferencedTable.Qualifier.String(), r.ReferencedTable.Name.String())
}

// Marshal encodes the desired schema for the ledger, which stores it
// opaquely so that a resumed apply can re-plan.
func (d *Desired) Marshal() []byte {
	b, err := json.Marshal(desiredJSON{Tables: d.Tables, Hash: d.Hash()})
	if err != nil {
		panic(fmt.Sprintf("marshal desired schema: %v", err)) // plain strings and ints: cannot fail
	}
	return b
}

// desiredJSON is a Desired as Marshal writes it.
type desiredJSON struct {
	Tables []Table `json:"tables"`
	Hash   string  `json:"hash"`
}

// UnmarshalDesired decodes what Marshal produced. Every table is vetted
// again and the hash recomputed; a mismatch is an error.
func UnmarshalDesired(b []byte) (*Desired, error) {
	var d desiredJSON
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode desired schema: %w", err)
	}
	if len(d.Tables) == 0 {
		return nil, errors.New("decode desired schema: no tables")
	}
	parsed, err := vetTables(newParser(), d.Tables)
	if err != nil {
		return nil, fmt.Errorf("decode desired schema: %w", err)
	}
	got, err := newDesired(d.Tables, parsed)
	if err != nil {
		return nil, fmt.Errorf("decode desired schema: %w", err)
	}
	if got.Hash() != d.Hash {
		return nil, fmt.Errorf("decode desired schema: hash %s does not match its tables (%s)", d.Hash, got.Hash())
	}
	return got, nil
}
