package plan

import (
	"strings"
	"unicode"
)

// This file lets tern plan table definitions that the servers accept but
// vitess's parser does not know (CONTRACT §3 refuses only what is hostile,
// never what is merely unfamiliar). vitessForm rewrites such a definition
// into one vitess parses, for analysis only: vetting, the pre-comparison
// (a rewritten table always goes through the shadow, so the server decides
// what it means) and diffing server-normalized definitions. The shadow
// server always runs the text as written, and new tables are created from
// the shadow's own SHOW CREATE TABLE.
//
// Types vitess lacks (MariaDB's UUID, INET6, INET4) become enum
// placeholders that no real column has, so that a change to or from them
// is still seen, and restoreTypes turns the placeholders back into the
// types in the planned DDL.

// placeholderTypes maps a type vitess lacks to the placeholder standing in
// for it.
var placeholderTypes = map[string]string{
	"uuid":  "enum('__tern_uuid__')",
	"inet6": "enum('__tern_inet6__')",
	"inet4": "enum('__tern_inet4__')",
}

// unknownTableOptions are MariaDB's table options that vitess does not
// parse; missedClauses carries out their changes.
var unknownTableOptions = map[string]bool{
	"TRANSACTIONAL": true, "PAGE_CHECKSUM": true, "PAGE_COMPRESSED": true, "PAGE_COMPRESSION_LEVEL": true,
	"ENCRYPTED": true, "ENCRYPTION_KEY_ID": true, "IETF_QUOTES": true, "SEQUENCE": true,
}

// exprDefaultsVitessKnows are the functions vitess parses as a DEFAULT
// without parentheses.
var exprDefaultsVitessKnows = map[string]bool{
	"current_timestamp": true, "now": true, "localtime": true, "localtimestamp": true,
}

// vitessForm returns sql rewritten for vitess's parser, and whether
// anything was rewritten. Quoted strings, quoted identifiers and comments
// are copied as they are.
func vitessForm(sql string) (string, bool) {
	if plainForVitess(sql) {
		return sql, false
	}
	return rewriteForVitess(sql)
}

// rewriteWords are the words (lowered) at which rewriteForVitess may
// rewrite something, besides DEFAULT.
var rewriteWords = map[string]bool{
	"precision": true, "national": true, "nchar": true, "nvarchar": true, "serial": true, "uuid": true, "inet6": true,
	"inet4": true, "ignored": true, "compressed": true, "system": true, "transactional": true, "page_checksum": true,
	"page_compressed": true, "page_compression_level": true, "encrypted": true, "encryption_key_id": true,
	"ietf_quotes": true, "sequence": true,
}

// plainForVitess reports, in one pass and without allocating, that
// rewriteForVitess would leave sql as it is: sql holds no comment, none of
// rewriteWords as a word, and no DEFAULT followed by a call of a function
// vitess does not know. Words inside quotes count too: a false answer
// only means rewriteForVitess must look.
func plainForVitess(sql string) bool {
	isWord := func(c byte) bool {
		return c == '_' || c == '$' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
	}
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	var buf [32]byte
	lower := func(w string) []byte {
		n := min(len(w), len(buf))
		for i := 0; i < n; i++ {
			c := w[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		return buf[:n]
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '#', c == '/' && i+1 < len(sql) && sql[i+1] == '*', c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			return false
		case !isWord(c):
			i++
			continue
		}
		j := i
		for j < len(sql) && isWord(sql[j]) {
			j++
		}
		w := sql[i:j]
		i = j
		if len(w) > len(buf) {
			continue // longer than any word that matters
		}
		lw := lower(w)
		if rewriteWords[string(lw)] {
			return false
		}
		if string(lw) != "default" {
			continue
		}
		k := j
		for k < len(sql) && isSpace(sql[k]) {
			k++
		}
		m := k
		for m < len(sql) && isWord(sql[m]) {
			m++
		}
		fn := sql[k:m]
		for m < len(sql) && isSpace(sql[m]) {
			m++
		}
		if len(fn) > 0 && m < len(sql) && sql[m] == '(' && (len(fn) > len(buf) || !exprDefaultsVitessKnows[string(lower(fn))]) {
			return false
		}
	}
	return true
}

// rewriteForVitess is vitessForm's rewriting.
func rewriteForVitess(sql string) (string, bool) {
	toks := lexWords(sql)
	var b strings.Builder
	changed := false
	prevSig := func(i int) *token {
		for j := i - 1; j >= 0; j-- {
			if toks[j].kind != tokSpace && toks[j].kind != tokComment {
				return &toks[j]
			}
		}
		return nil
	}
	nextSig := func(i int) int {
		for j := i + 1; j < len(toks); j++ {
			if toks[j].kind != tokSpace && toks[j].kind != tokComment {
				return j
			}
		}
		return -1
	}
	// isType reports whether toks[i] stands where a column type goes: just
	// after a column name that follows "(" or ",".
	isType := func(i int) bool {
		p := -1
		for j := i - 1; j >= 0; j-- {
			if toks[j].kind != tokSpace && toks[j].kind != tokComment {
				p = j
				break
			}
		}
		if p < 0 || (toks[p].kind != tokWord && toks[p].kind != tokQuoted) {
			return false
		}
		pp := prevSig(p)
		return pp != nil && (pp.text == "(" || pp.text == ",")
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind != tokWord {
			b.WriteString(t.text)
			continue
		}
		w := strings.ToLower(t.text)
		n := nextSig(i)
		next := ""
		if n >= 0 {
			next = strings.ToLower(toks[n].text)
		}
		switch {
		case w == "double" && next == "precision":
			b.WriteString("double")
			i = n
			changed = true
		case w == "national" && (next == "varchar" || next == "char" || next == "character"):
			changed = true
			i = n - 1 // drop NATIONAL and the space after it
		case (w == "nchar" || w == "nvarchar") && isType(i):
			b.WriteString(strings.TrimPrefix(w, "n"))
			changed = true
		case w == "serial" && next == "default":
			// SERIAL DEFAULT VALUE, an integer column's attribute.
			if m := nextSig(n); m >= 0 && strings.EqualFold(toks[m].text, "value") {
				b.WriteString("NOT NULL AUTO_INCREMENT UNIQUE")
				i = m
				changed = true
				continue
			}
			b.WriteString(t.text)
		case w == "serial" && isType(i):
			b.WriteString("bigint unsigned NOT NULL AUTO_INCREMENT UNIQUE")
			changed = true
		case placeholderTypes[w] != "" && isType(i) && next != "(":
			b.WriteString(placeholderTypes[w])
			changed = true
		case w == "ignored" || (w == "not" && next == "ignored"):
			// An index's IGNORED / NOT IGNORED (MariaDB), after its key
			// parts or its COMMENT: left to missedClauses.
			if p := prevSig(i); p != nil && (p.text == ")" || p.kind == tokQuoted) {
				if w == "not" {
					i = n
				}
				changed = true
				continue
			}
			b.WriteString(t.text)
		case unknownTableOptions[strings.ToUpper(w)] && next == "=":
			// A table option vitess does not know: left to missedClauses.
			if m := nextSig(n); m >= 0 {
				i = m
				changed = true
				continue
			}
			b.WriteString(t.text)
		case w == "compressed" && (prevSig(i) == nil || prevSig(i).text != "="):
			changed = true
			if next == "=" {
				// COMPRESSED=zlib
				if m := nextSig(n); m >= 0 {
					i = m
				}
			}
		case (w == "with" || w == "without") && next == "system":
			if m := nextSig(n); m >= 0 && strings.EqualFold(toks[m].text, "versioning") {
				i = m
				changed = true
				continue
			}
			b.WriteString(t.text)
		case w == "default" && n >= 0 && toks[n].kind == tokWord && !exprDefaultsVitessKnows[next]:
			// DEFAULT fn(...) as MariaDB shows expression defaults:
			// parenthesize the call, which both servers read alike.
			open := nextSig(n)
			if open < 0 || toks[open].text != "(" {
				b.WriteString(t.text)
				continue
			}
			end, ok := closeParen(toks, open)
			if !ok {
				b.WriteString(t.text)
				continue
			}
			b.WriteString(t.text + " (")
			for _, x := range toks[n : end+1] {
				b.WriteString(x.text)
			}
			b.WriteString(")")
			i = end
			changed = true
		default:
			b.WriteString(t.text)
		}
	}
	if !changed {
		return sql, false
	}
	return b.String(), true
}

// restoreTypes turns vitessForm's placeholder types in ddl back into the
// types they stand for.
func restoreTypes(ddl string) string {
	if !strings.Contains(ddl, "'__tern_") {
		return ddl
	}
	for typ, ph := range placeholderTypes {
		ddl = strings.ReplaceAll(ddl, ph, typ)
	}
	return ddl
}

func closeParen(toks []token, open int) (int, bool) {
	depth := 0
	for j := open; j < len(toks); j++ {
		switch toks[j].text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return j, true
			}
		}
	}
	return 0, false
}

type tokKind int

const (
	tokWord tokKind = iota
	tokQuoted
	tokSpace
	tokComment
	tokPunct
)

type token struct {
	kind tokKind
	text string
}

// lexWords cuts sql into words, quoted strings and identifiers, comments,
// spaces and single punctuation characters. Concatenating the tokens gives
// sql back.
func lexWords(sql string) []token {
	var out []token
	isWord := func(r byte) bool {
		return r == '_' || r == '$' || r >= 0x80 || unicode.IsLetter(rune(r)) || unicode.IsDigit(rune(r))
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		j := i + 1
		kind := tokPunct
		switch {
		case c == '\'' || c == '"' || c == '`':
			kind = tokQuoted
			for j < len(sql) {
				if sql[j] == '\\' && c != '`' {
					j += 2
					continue
				}
				if sql[j] == c {
					if j+1 < len(sql) && sql[j+1] == c {
						j += 2
						continue
					}
					j++
					break
				}
				j++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			kind = tokComment
			if k := strings.Index(sql[i+2:], "*/"); k >= 0 {
				j = i + 2 + k + 2
			} else {
				j = len(sql)
			}
		case c == '#' || (c == '-' && strings.HasPrefix(sql[i:], "-- ")):
			kind = tokComment
			if k := strings.IndexByte(sql[i:], '\n'); k >= 0 {
				j = i + k
			} else {
				j = len(sql)
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			kind = tokSpace
			for j < len(sql) && strings.IndexByte(" \t\n\r", sql[j]) >= 0 {
				j++
			}
		case isWord(c):
			kind = tokWord
			for j < len(sql) && isWord(sql[j]) {
				j++
			}
		}
		j = min(j, len(sql))
		out = append(out, token{kind: kind, text: sql[i:j]})
		i = j
	}
	return out
}

// dropCheckAsConstraint rewrites ALTER's DROP CHECK name, which MariaDB
// does not have, as DROP CONSTRAINT name, which both servers run.
func dropCheckAsConstraint(ddl string) string {
	if !strings.Contains(ddl, "DROP CHECK ") {
		return ddl
	}
	toks := lexWords(ddl)
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].kind == tokWord && strings.EqualFold(toks[i].text, "DROP") && toks[i+1].kind == tokSpace &&
			toks[i+2].kind == tokWord && strings.EqualFold(toks[i+2].text, "CHECK") {
			toks[i+2].text = "CONSTRAINT"
		}
	}
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
	}
	return b.String()
}

// columnCheck returns a SHOW CREATE TABLE column line without its CHECK
// constraint, and the constraint ("" when it has none). MariaDB keeps a
// column's CHECK as part of the column (it has no name to drop it by, and
// MODIFY COLUMN replaces it), where vitess would model it as a table
// constraint with a made-up name; diffForm hides it from vitess and
// missedClauses carries out its changes with MODIFY COLUMN.
func columnCheck(line string) (rest, check string) {
	if !strings.HasPrefix(line, "  `") || !strings.Contains(line, "CHECK (") {
		return line, ""
	}
	toks := lexWords(line)
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].kind != tokWord || toks[i].text != "CHECK" || toks[i+1].kind != tokSpace || toks[i+2].text != "(" {
			continue
		}
		end, ok := closeParen(toks, i+2)
		if !ok {
			return line, ""
		}
		var r, c strings.Builder
		for j, t := range toks {
			switch {
			case j >= i && j <= end:
				c.WriteString(t.text)
			case j == i-1 && t.kind == tokSpace:
			default:
				r.WriteString(t.text)
			}
		}
		return r.String(), c.String()
	}
	return line, ""
}

// diffForm is the form of a MariaDB SHOW CREATE TABLE text that tern diffs
// with schemadiff: vitessForm's, without column CHECK constraints, and
// with its table CHECK constraints' names qualified by the table's
// (qualifyCheckName).
func diffForm(def string, mariadb bool) string {
	form, _ := vitessForm(def)
	if !mariadb || !strings.Contains(form, "CHECK (") {
		return form
	}
	table, _, _ := columnName("  " + strings.TrimPrefix(strings.SplitN(form, "\n", 2)[0], "CREATE TABLE "))
	lines := strings.Split(form, "\n")
	for i, l := range lines {
		comma := strings.HasSuffix(l, ",")
		if q, ok := qualifyCheckName(strings.TrimSuffix(l, ","), table); ok {
			lines[i] = q
		} else if rest, check := columnCheck(strings.TrimSuffix(l, ",")); check != "" {
			lines[i] = rest
		} else {
			continue
		}
		if comma {
			lines[i] += ","
		}
	}
	return strings.Join(lines, "\n")
}

// checkNameMark starts the name diffForm gives a MariaDB table CHECK
// constraint: the mark, the table's name, "__", the constraint's name.
// MariaDB names CHECK constraints per table (an unnamed one is
// CONSTRAINT_1 in every table that has one), where schemadiff requires
// names unique in the schema, as MySQL does; qualified, they are, and
// restoreCheckNames gives the planned DDL the names back.
const checkNameMark = "__tern_check__"

// qualifyCheckName rewrites a SHOW CREATE TABLE line
// "  CONSTRAINT `name` CHECK (...)" of table with the qualified name.
func qualifyCheckName(line, table string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "  CONSTRAINT ")
	if !ok || table == "" {
		return "", false
	}
	name, after, ok := columnName("  " + rest)
	if !ok || !strings.HasPrefix(after, " CHECK (") {
		return "", false
	}
	return "  CONSTRAINT " + quoteIdent(checkNameMark+table+"__"+name) + after, true
}

// restoreCheckNames turns the qualified CHECK names of table in ddl (see
// checkNameMark) back into the table's own.
func restoreCheckNames(ddl, table string) string {
	mark := "`" + strings.ReplaceAll(checkNameMark+table+"__", "`", "``")
	if !strings.Contains(ddl, mark) {
		return ddl
	}
	return strings.ReplaceAll(ddl, mark, "`")
}
