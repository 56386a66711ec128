package awsmodel

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/dlclark/regexp2/v2"
)

// Matcher is a compiled model pattern. Patterns in the models are Java
// regular expressions; AWS matches them against the whole value (Java's
// Matcher.matches), and so does Match.
type Matcher interface{ Match(s string) bool }

type re2Matcher struct{ re *regexp.Regexp }

func (m re2Matcher) Match(s string) bool { return m.re.MatchString(s) }

type backtrackMatcher struct{ re *regexp2.Regexp }

func (m backtrackMatcher) Match(s string) bool {
	ok, err := m.re.MatchString(s)
	return err == nil && ok
}

// Approximation records a model pattern Go's RE2 cannot compile as
// written, and what the checker does with it.
type Approximation struct {
	Pattern    string // as the model writes it
	Translated string // what is compiled ("" when unchanged)
	Engine     string // "RE2" or "regexp2" (backtracking, lookarounds)
	Note       string // why, and how it differs from Java's meaning
}

var (
	patMu    sync.Mutex
	patterns = map[string]Matcher{}
	approx   = map[string]Approximation{}
)

// CompilePattern compiles a model pattern for whole-value matching, once.
func CompilePattern(p string) (Matcher, error) {
	patMu.Lock()
	defer patMu.Unlock()
	if m, ok := patterns[p]; ok {
		return m, nil
	}
	m, a, err := compilePattern(p)
	if err != nil {
		return nil, err
	}
	patterns[p] = m
	if a != nil {
		approx[p] = *a
	}
	return m, nil
}

// Approximations returns every pattern compiled so far that RE2 could not
// take as written, sorted by pattern.
func Approximations() []Approximation {
	patMu.Lock()
	defer patMu.Unlock()
	out := make([]Approximation, 0, len(approx))
	for _, a := range approx {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

func compilePattern(p string) (Matcher, *Approximation, error) {
	if re, err := regexp.Compile(`^(?:` + javaDot(p) + `)$`); err == nil {
		return re2Matcher{re}, nil, nil
	}
	t, notes := translate(p)
	t = javaDot(t)
	if re, err := regexp.Compile(`^(?:` + t + `)$`); err == nil {
		return re2Matcher{re}, &Approximation{Pattern: p, Translated: t, Engine: "RE2", Note: strings.Join(notes, "; ")}, nil
	}
	re, err := regexp2.Compile(`\A(?:` + t + `)\z`)
	if err != nil {
		return nil, nil, fmt.Errorf("compile model pattern %q: %w", p, err)
	}
	a := &Approximation{Pattern: p, Engine: "regexp2", Note: strings.Join(notes, "; ")}
	if t != p {
		a.Translated = t
	}
	if a.Note == "" {
		a.Note = "backtracking engine (RE2 lacks a construct used: lookaround, backreference or a repeat count over 1000); same meaning"
	}
	return backtrackMatcher{re}, a, nil
}

// javaPOSIX are Java's POSIX classes (US-ASCII only unless
// UNICODE_CHARACTER_CLASS, which AWS does not set), as class contents.
var javaPOSIX = map[string]string{
	"Lower":  `a-z`,
	"Upper":  `A-Z`,
	"ASCII":  `\x00-\x7F`,
	"Alpha":  `a-zA-Z`,
	"Digit":  `0-9`,
	"Alnum":  `a-zA-Z0-9`,
	"Punct":  `!-/:-@\[-` + "`" + `{-~`,
	"Graph":  `!-~`,
	"Print":  `\x20-\x7E`,
	"Blank":  ` \t`,
	"Cntrl":  `\x00-\x1F\x7F`,
	"XDigit": `0-9a-fA-F`,
	"Space":  ` \t\n\x0B\f\r`,
}

// translate rewrites the Java-only constructs of p into RE2 syntax:
// POSIX classes (\p{Print}…), \uXXXX escapes, possessive quantifiers
// (made greedy: looser, never stricter) and Java's \p{IsX} spellings.
func translate(p string) (string, []string) {
	var b strings.Builder
	var notes []string
	note := func(n string) {
		for _, e := range notes {
			if e == n {
				return
			}
		}
		notes = append(notes, n)
	}
	inClass := 0
	prevQuant, inBrace := false, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			d := p[i+1]
			if (d == 'p' || d == 'P') && i+2 < len(p) && p[i+2] == '{' {
				end := strings.IndexByte(p[i:], '}')
				if end > 0 {
					name := p[i+3 : i+end]
					key := strings.TrimPrefix(name, "Is")
					if set, ok := javaPOSIX[key]; ok {
						neg := d == 'P'
						switch {
						case inClass > 0 && !neg:
							b.WriteString(set)
						case neg:
							b.WriteString("[^" + set + "]")
						default:
							b.WriteString("[" + set + "]")
						}
						note(`Java POSIX class \p{` + name + `} as its US-ASCII set (exact)`)
						i += end
						prevQuant = false
						continue
					}
					if strings.HasPrefix(name, "Is") {
						b.WriteString(`\` + string(d) + `{` + key + `}`)
						note(`Java \p{` + name + `} as \p{` + key + `}`)
						i += end
						prevQuant = false
						continue
					}
				}
			}
			if d == 'u' && i+5 < len(p) {
				hi, err := strconv.ParseUint(p[i+2:i+6], 16, 32)
				if err == nil {
					// Java matches UTF-16: a high surrogate escape followed by a
					// low one is one supplementary code point.
					if hi >= 0xD800 && hi <= 0xDBFF && i+11 < len(p) && p[i+6] == '\\' && p[i+7] == 'u' {
						if lo, err := strconv.ParseUint(p[i+8:i+12], 16, 32); err == nil && lo >= 0xDC00 && lo <= 0xDFFF {
							fmt.Fprintf(&b, `\x{%X}`, 0x10000+(hi-0xD800)<<10+(lo-0xDC00))
							note(`UTF-16 surrogate pair \uD8xx\uDCxx as one code point (exact)`)
							i += 11
							prevQuant = false
							continue
						}
					}
					b.WriteString(`\x{` + p[i+2:i+6] + `}`)
					note(`\uXXXX as \x{XXXX} (exact)`)
					i += 5
					prevQuant = false
					continue
				}
			}
			b.WriteByte(c)
			b.WriteByte(d)
			i++
			prevQuant = false
		case c == '[':
			inClass++
			b.WriteByte(c)
			prevQuant = false
		case c == ']' && inClass > 0:
			inClass--
			b.WriteByte(c)
			prevQuant = false
		case inClass > 0:
			b.WriteByte(c)
		case c == '+' && prevQuant:
			note("possessive quantifier made greedy (looser: may accept what Java refuses after backtracking)")
			prevQuant = false
		case c == '{':
			inBrace = true
			b.WriteByte(c)
		case c == '}' && inBrace:
			inBrace = false
			b.WriteByte(c)
			prevQuant = true
		case c == '*' || c == '+' || c == '?':
			b.WriteByte(c)
			// "x+?" is lazy, not a quantifier to make possessive again.
			prevQuant = !(c == '?' && prevQuant)
		default:
			b.WriteByte(c)
			prevQuant = false
		}
	}
	return b.String(), notes
}

// javaDot rewrites \\d \\w \\s (and their negations outside classes) and '.'
// outside classes to what they mean in Java: '.' without
// DOTALL: any character but the line terminators \n \r \u0085 \u2028
// \u2029 (RE2's and .NET's '.' refuse only \n). Exact, not listed.
func javaDot(p string) string {
	var b strings.Builder
	inClass := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			// Java's \d \w \s are US-ASCII (RE2's \s lacks \x0B, regexp2's
			// are Unicode): spell them out.
			set, ok := map[byte]string{'d': `0-9`, 'w': `a-zA-Z0-9_`, 's': ` \t\n\x0B\f\r`}[p[i+1]]
			switch {
			case ok && inClass > 0:
				b.WriteString(set)
			case ok:
				b.WriteString("[" + set + "]")
			case inClass == 0 && (p[i+1] == 'D' || p[i+1] == 'W' || p[i+1] == 'S'):
				set = map[byte]string{'D': `0-9`, 'W': `a-zA-Z0-9_`, 'S': ` \t\n\x0B\f\r`}[p[i+1]]
				b.WriteString("[^" + set + "]")
			default:
				b.WriteByte(c)
				b.WriteByte(p[i+1])
			}
			i++
		case c == '[':
			inClass++
			b.WriteByte(c)
		case c == ']' && inClass > 0:
			inClass--
			b.WriteByte(c)
		case c == '.' && inClass == 0:
			b.WriteString(`[^\n\r\x{85}\x{2028}\x{2029}]`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
