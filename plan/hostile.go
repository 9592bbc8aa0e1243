package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"
)

// This file holds the checks for hostile schema files (issue 12): text a
// server would read differently from tern's checker, and expressions that
// do something when the server evaluates them. They refuse what is
// hostile, never what is merely unfamiliar: SQL the parser does not know
// is answered elsewhere.

// vetHostileText refuses executable comments (/*!NNNNN ... */,
// /*M!NNNNNN ... */) anywhere in a statement's text, quotes included: a
// server runs or skips their text depending on its version, and skips
// them as plain comments that end at the first */ whatever quotes are
// inside, so no checker can know what they hide. Inside quotes the
// sequence is refused too, because whether a server reads it as quoted
// depends on its sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES). It returns
// the line of the first one.
func vetHostileText(st rawStatement) (int, error) {
	loc := execComment.FindStringIndex(st.Text)
	if loc == nil {
		return 0, nil
	}
	line := st.Line + strings.Count(st.Text[:loc[0]], "\n")
	return line, fmt.Errorf("executable comment %s is not allowed in schema files: a server runs or skips its text by version, so what it does cannot be checked; write the SQL without it", st.Text[loc[0]:loc[1]])
}

// execComment finds the opening of an executable comment.
var execComment = regexp.MustCompile(`(?i)/\*m?!\d*`)

// safeFunctions are the built-in functions a DEFAULT, CHECK, generated
// column, index or partition expression may call: they compute a value
// from their arguments (or read the clock, or make a random value) and
// neither read data nor do anything else. Every other name, a stored
// function or a UDF included, is refused.
var safeFunctions = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`
		abs acos asin atan atan2 ceil ceiling conv cos cot crc32 degrees exp floor
		greatest least ln log log10 log2 mod pi pow power radians rand round sign sin
		sqrt tan truncate div
		ascii bin bit_length char_length character_length concat concat_ws elt
		export_set field find_in_set format from_base64 hex insert instr lcase left
		length locate lower lpad ltrim make_set mid oct octet_length ord position
		quote repeat replace reverse right rpad rtrim soundex space strcmp substr
		substring substring_index to_base64 trim ucase unhex upper char
		md5 sha sha1 sha2 inet_aton inet_ntoa inet6_aton inet6_ntoa is_ipv4
		is_ipv4_compat is_ipv4_mapped is_ipv6 bit_count
		if ifnull nullif coalesce isnull interval
		adddate addtime convert_tz curdate current_date current_time
		current_timestamp curtime date date_add date_format date_sub datediff day
		dayname dayofmonth dayofweek dayofyear extract from_days from_unixtime hour
		last_day localtime localtimestamp makedate maketime microsecond minute month
		monthname now period_add period_diff quarter sec_to_time second str_to_date
		subdate subtime sysdate time time_format time_to_sec timediff timestamp
		timestampadd timestampdiff to_days to_seconds unix_timestamp utc_date
		utc_time utc_timestamp week weekday weekofyear year yearweek
		uuid uuid_short sys_guid
		json_array json_array_append json_array_insert json_compact json_contains
		json_contains_path json_depth json_detailed json_equals json_exists
		json_extract json_insert json_keys json_length json_loose json_merge
		json_merge_patch json_merge_preserve json_normalize json_object
		json_overlaps json_query json_quote json_remove json_replace json_search
		json_set json_type json_unquote json_valid json_value
		regexp_instr regexp_replace regexp_substr
		column_check column_create column_exists column_get column_json
		column_list column_add column_delete
	`) {
		safeFunctions[f] = true
	}
}

// vetExpressions refuses expressions in a CREATE TABLE (DEFAULT, ON
// UPDATE, generated columns, CHECK constraints, index and partition
// expressions) that call a function outside safeFunctions, hold a
// subquery, or read a user or system variable. It returns the line of the
// offending text in st.
func vetExpressions(ct *sqlparser.CreateTable, st rawStatement) (int, error) {
	name := ct.Table.Name.String()
	for _, e := range expressionsOf(ct) {
		what, find := hostileIn(e.expr)
		if what == "" {
			continue
		}
		return lineOfPattern(st, find), fmt.Errorf("table %s: %s: %s is not allowed: it runs on the server when the expression is evaluated (only built-in functions without side effects, on the table's own columns, are)", name, e.where, what)
	}
	return 0, nil
}

// located is an expression of a CREATE TABLE and where it stands.
type located struct {
	where string
	expr  sqlparser.Expr
}

// expressionsOf lists every expression of ct that the server evaluates.
func expressionsOf(ct *sqlparser.CreateTable) []located {
	var out []located
	add := func(where string, e sqlparser.Expr) {
		if e != nil {
			out = append(out, located{where, e})
		}
	}
	ts := ct.TableSpec
	if ts == nil {
		return nil
	}
	for _, c := range ts.Columns {
		if c.Type == nil || c.Type.Options == nil {
			continue
		}
		o := c.Type.Options
		col := "column " + c.Name.String()
		add(col+" DEFAULT", o.Default)
		add(col+" ON UPDATE", o.OnUpdate)
		add(col+" generated AS", o.As)
	}
	for _, idx := range ts.Indexes {
		for _, ic := range idx.Columns {
			add("index "+idx.Info.Name.String()+" expression", ic.Expression)
		}
	}
	for _, c := range ts.Constraints {
		if cc, ok := c.Details.(*sqlparser.CheckConstraintDefinition); ok {
			where := "CHECK"
			if !c.Name.IsEmpty() {
				where = "CHECK " + c.Name.String()
			}
			add(where, cc.Expr)
		}
	}
	if po := ts.PartitionOption; po != nil {
		add("PARTITION BY", po.Expr)
		if po.SubPartition != nil {
			add("SUBPARTITION BY", po.SubPartition.Expr)
		}
		for _, d := range po.Definitions {
			if d.Options != nil && d.Options.ValueRange != nil {
				for _, v := range d.Options.ValueRange.Range {
					add("partition "+d.Name.String()+" VALUES", v)
				}
			}
		}
	}
	return out
}

// safeNode reports whether an expression node may appear in a table's
// expressions: operators, literals, column names and the built-in
// functions that vitess parses into nodes of their own. Function calls
// by name are judged by safeFunctions.
func safeNode(e sqlparser.Expr) bool {
	switch e.(type) {
	case *sqlparser.AndExpr, *sqlparser.OrExpr, *sqlparser.XorExpr, *sqlparser.NotExpr,
		*sqlparser.ComparisonExpr, *sqlparser.BetweenExpr, *sqlparser.IsExpr,
		*sqlparser.Literal, *sqlparser.NullVal, sqlparser.BoolVal, *sqlparser.BoolVal, *sqlparser.ColName,
		sqlparser.ValTuple, *sqlparser.ValTuple, *sqlparser.BinaryExpr, *sqlparser.UnaryExpr,
		*sqlparser.IntroducerExpr, *sqlparser.CollateExpr, *sqlparser.CaseExpr,
		*sqlparser.CastExpr, *sqlparser.ConvertExpr, *sqlparser.ConvertUsingExpr,
		*sqlparser.CurTimeFuncExpr, *sqlparser.TimestampDiffExpr, *sqlparser.ExtractFuncExpr,
		*sqlparser.WeightStringFuncExpr, *sqlparser.SubstrExpr, *sqlparser.InsertExpr,
		*sqlparser.IntervalFuncExpr, *sqlparser.IntervalDateExpr, *sqlparser.LocateExpr,
		*sqlparser.CharExpr, *sqlparser.TrimFuncExpr, *sqlparser.Default,
		*sqlparser.JSONSchemaValidFuncExpr, *sqlparser.JSONSchemaValidationReportFuncExpr,
		*sqlparser.JSONPrettyExpr, *sqlparser.JSONStorageFreeExpr, *sqlparser.JSONStorageSizeExpr,
		*sqlparser.JSONContainsExpr, *sqlparser.JSONContainsPathExpr, *sqlparser.JSONExtractExpr,
		*sqlparser.JSONKeysExpr, *sqlparser.JSONOverlapsExpr, *sqlparser.JSONSearchExpr,
		*sqlparser.JSONValueExpr, *sqlparser.JSONArrayExpr, *sqlparser.JSONObjectExpr,
		*sqlparser.JSONQuoteExpr, *sqlparser.JSONAttributesExpr, *sqlparser.JSONValueModifierExpr,
		*sqlparser.JSONValueMergeExpr, *sqlparser.JSONRemoveExpr, *sqlparser.JSONUnquoteExpr,
		*sqlparser.MemberOfExpr,
		*sqlparser.RegexpInstrExpr, *sqlparser.RegexpLikeExpr, *sqlparser.RegexpReplaceExpr,
		*sqlparser.RegexpSubstrExpr, *sqlparser.ExtractValueExpr, *sqlparser.UpdateXMLExpr,
		*sqlparser.PointExpr, *sqlparser.LineStringExpr, *sqlparser.PolygonExpr,
		*sqlparser.MultiPolygonExpr, *sqlparser.MultiPointExpr, *sqlparser.MultiLinestringExpr,
		*sqlparser.GeomFromTextExpr, *sqlparser.GeomFromWKBExpr, *sqlparser.GeomFormatExpr,
		*sqlparser.GeomPropertyFuncExpr, *sqlparser.PointPropertyFuncExpr,
		*sqlparser.LinestrPropertyFuncExpr, *sqlparser.PolygonPropertyFuncExpr,
		*sqlparser.GeomCollPropertyFuncExpr, *sqlparser.GeoHashFromLatLongExpr,
		*sqlparser.GeoHashFromPointExpr, *sqlparser.GeomFromGeoHashExpr,
		*sqlparser.GeoJSONFromGeomExpr, *sqlparser.GeomFromGeoJSONExpr:
		return true
	}
	return false
}

// hostileIn returns what in e is refused ("function SLEEP()", "a
// subquery", "user variable @x") and a pattern that finds it in the
// statement's text, or "" when e is harmless.
func hostileIn(e sqlparser.Expr) (what string, find *regexp.Regexp) {
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		if what != "" {
			return false, nil
		}
		x, ok := n.(sqlparser.Expr)
		if !ok {
			return true, nil
		}
		switch x := x.(type) {
		case *sqlparser.FuncExpr:
			fn := x.Name.String()
			switch {
			case !x.Qualifier.IsEmpty():
				what = fmt.Sprintf("stored function %s.%s()", x.Qualifier.String(), fn)
			case !safeFunctions[strings.ToLower(fn)]:
				what = fmt.Sprintf("function %s() (not a built-in without side effects; stored functions and UDFs are refused too)", fn)
			default:
				return true, nil
			}
			find = callOf(fn)
		case *sqlparser.Subquery, *sqlparser.ExistsExpr:
			what, find = "a subquery", regexp.MustCompile(`(?i)\bselect\b`)
		case *sqlparser.Variable:
			kind := "user variable @"
			if x.Scope != sqlparser.VariableScope {
				kind = "system variable @@"
			}
			what, find = kind+x.Name.String(), regexp.MustCompile(`@`)
		case *sqlparser.AssignmentExpr:
			what, find = "an assignment", regexp.MustCompile(`:=`)
		case *sqlparser.LockingFunc, *sqlparser.PerformanceSchemaFuncExpr, *sqlparser.GTIDFuncExpr:
			s := sqlparser.String(x)
			fn, _, _ := strings.Cut(s, "(")
			what = fmt.Sprintf("function %s()", fn)
			find = callOf(fn)
		default:
			if safeNode(x) {
				return true, nil
			}
			what = fmt.Sprintf("%q", sqlparser.String(x))
		}
		return false, nil
	}, e)
	return what, find
}

// callOf finds a call of function fn, backquoted or not.
func callOf(fn string) *regexp.Regexp {
	return regexp.MustCompile("(?i)(?:^|[^\\w$])(`?" + regexp.QuoteMeta(fn) + "`?\\s*\\()")
}

// lineOfPattern returns the line of st where find (or its first group)
// first matches outside string literals, or st's first line.
func lineOfPattern(st rawStatement, find *regexp.Regexp) int {
	if find == nil {
		return st.Line
	}
	masked := maskStrings(st.Expanded)
	if loc := find.FindStringSubmatchIndex(masked); loc != nil {
		start := loc[0]
		if len(loc) >= 4 && loc[2] >= 0 {
			start = loc[2] // the group, past what precedes the name
		}
		return st.Line + strings.Count(masked[:start], "\n")
	}
	return st.Line
}

// maskStrings blanks the inside of '...' and "..." literals, keeping
// newlines, so that a search for SQL text does not match inside them.
func maskStrings(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		q := b[i]
		if q != '\'' && q != '"' {
			continue
		}
		for j := i + 1; j < len(b); j++ {
			if b[j] == '\\' && j+1 < len(b) {
				b[j] = ' '
				if b[j+1] != '\n' {
					b[j+1] = ' '
				}
				j++
				continue
			}
			if b[j] == q {
				i = j
				break
			}
			if b[j] != '\n' {
				b[j] = ' '
			}
			i = j
		}
	}
	return string(b)
}

// DefaultEngines is the storage-engine allow-list of a target that names
// none (config: targets[].allowed_engines).
var DefaultEngines = []string{"InnoDB"}

// WithEngines returns a copy of p whose plans allow only the storage
// engines named (case-insensitively); none means DefaultEngines.
func (p *Planner) WithEngines(engines []string) *Planner {
	c := *p
	c.AllowedEngines = slices.Clone(engines)
	return &c
}

func (p *Planner) engines() []string {
	if len(p.AllowedEngines) > 0 {
		return p.AllowedEngines
	}
	return DefaultEngines
}

// vetShadowDefs is the second wall: whatever the files said, no plan is
// made from a shadow table the server created with DATA DIRECTORY, INDEX
// DIRECTORY, CONNECTION, or an engine outside engines (partitions
// included). defs are the shadow's SHOW CREATE TABLE texts by table name;
// tables says where each came from.
func vetShadowDefs(defs map[string]string, tables map[string]Table, engines []string) error {
	for _, name := range sortedKeys(defs) {
		problem := shadowDefProblem(defs[name], engines)
		if problem == "" {
			continue
		}
		t := tables[name]
		return fmt.Errorf("%s:%d: table %s: the shadow server created it with %s, which is not allowed: no plan is made", t.File, t.Line, name, problem)
	}
	return nil
}

// shadowDefProblem scans a SHOW CREATE TABLE text, outside quoted strings
// and identifiers but inside comments, for the options vetShadowDefs
// refuses, and describes the first one found.
func shadowDefProblem(def string, engines []string) string {
	words := optionWords(def)
	for i, w := range words {
		next := func(k int) string {
			if i+k < len(words) {
				return words[i+k]
			}
			return ""
		}
		switch w = strings.ToUpper(w); w {
		case "DATA", "INDEX":
			if strings.EqualFold(next(1), "DIRECTORY") {
				return w + " DIRECTORY"
			}
		case "CONNECTION":
			if next(1) == "=" {
				return "CONNECTION"
			}
		case "ENGINE":
			if next(1) != "=" {
				continue
			}
			e := next(2)
			if !slices.ContainsFunc(engines, func(a string) bool { return strings.EqualFold(a, e) }) {
				return fmt.Sprintf("ENGINE=%s (allowed_engines: %s)", e, strings.Join(engines, ", "))
			}
		}
	}
	return ""
}

// optionWords splits SQL text into words and "=" signs,
// skipping quoted strings and identifiers; other punctuation separates
// words.
func optionWords(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(s) {
				if s[j] == '\\' && c != '`' {
					j += 2
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
		case c == '=':
			out = append(out, "=")
			i++
		case c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '$' || s[j] >= '0' && s[j] <= '9' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 0x80) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		default:
			i++
		}
	}
	return out
}
