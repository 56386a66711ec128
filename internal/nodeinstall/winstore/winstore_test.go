package winstore

// PowerShell cannot run where these tests run (Linux CI): a fake Runner
// records what would have been run and answers as the scripts do. What is
// proven here: the scripts are fixed text, values travel only in the
// environment and the PFX only on stdin, hostile values never reach a
// script, and every answer (result, error line, garbage, silence) is read
// correctly. What is not proven here: the scripts' behaviour on a real
// Windows with IIS.

import (
	"context"
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"
)

type call struct {
	script string
	env    []string
	stdin  []byte
}

type fakeRunner struct {
	calls  []call
	stdout string
	stderr string
	err    error
}

func (f *fakeRunner) Run(_ context.Context, script string, env []string, stdin []byte) ([]byte, []byte, error) {
	f.calls = append(f.calls, call{script, env, stdin})
	return []byte(f.stdout), []byte(f.stderr), f.err
}

const thumb = "0123456789ABCDEF0123456789ABCDEF01234567"

var allScripts = map[string]string{"import": importScript, "has": hasScript, "remove": removeScript, "binding": bindingScript, "bind": bindScript}

func TestImport(t *testing.T) {
	ctx := context.Background()
	pfx := []byte("\x30\x82PFX bytes")
	password := "S3cret-Pa55word-0123456789abcdef"
	f := &fakeRunner{stdout: "WARNING: noise\r\nCERTFERRY_WINSTORE {\"thumbprint\":\"" + strings.ToLower(thumb) + "\"}\r\n"}
	got, err := New(f).Import(ctx, `LocalMachine\My`, pfx, password)
	if err != nil {
		t.Fatal(err)
	}
	if got != thumb {
		t.Errorf("thumbprint %s, want %s", got, thumb)
	}
	c := f.calls[0]
	if c.script != importScript {
		t.Error("Import ran something other than the fixed import script")
	}
	if string(c.stdin) != base64.StdEncoding.EncodeToString(pfx) {
		t.Errorf("stdin %q, want the base64 PFX", c.stdin)
	}
	wantEnv := []string{`CERTFERRY_STORE=LocalMachine\My`, "CERTFERRY_PFX_PASSWORD=" + password}
	if strings.Join(c.env, "|") != strings.Join(wantEnv, "|") {
		t.Errorf("env %q, want %q", c.env, wantEnv)
	}
	if strings.Contains(c.script, password) || strings.Contains(encodeCommand(c.script), password) {
		t.Error("the password is in the command line")
	}
}

func TestCalls(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		do      func(*PowerShell) (string, error)
		stdout  string
		script  string
		env     []string
		want    string
		wantErr string
	}{
		{"has: present", func(p *PowerShell) (string, error) {
			ok, err := p.Has(ctx, `LocalMachine\My`, strings.ToLower(thumb))
			return strings.ToUpper(strings.TrimSpace(strings.Repeat("X", boolInt(ok)))), err
		}, `CERTFERRY_WINSTORE {"present":true}`, hasScript, []string{`CERTFERRY_STORE=LocalMachine\My`, "CERTFERRY_THUMBPRINT=" + thumb}, "X", ""},
		{"has: absent", func(p *PowerShell) (string, error) {
			ok, err := p.Has(ctx, `CurrentUser\My`, thumb)
			return strings.Repeat("X", boolInt(ok)), err
		}, `CERTFERRY_WINSTORE {"present":false}`, hasScript, []string{`CERTFERRY_STORE=CurrentUser\My`, "CERTFERRY_THUMBPRINT=" + thumb}, "", ""},
		{"has: answer without present", func(p *PowerShell) (string, error) {
			_, err := p.Has(ctx, `LocalMachine\My`, thumb)
			return "", err
		}, `CERTFERRY_WINSTORE {}`, hasScript, []string{`CERTFERRY_STORE=LocalMachine\My`, "CERTFERRY_THUMBPRINT=" + thumb}, "", `answered without "present"`},
		{"remove", func(p *PowerShell) (string, error) {
			return "", p.Remove(ctx, `LocalMachine\WebHosting`, thumb)
		}, `CERTFERRY_WINSTORE {}`, removeScript, []string{`CERTFERRY_STORE=LocalMachine\WebHosting`, "CERTFERRY_THUMBPRINT=" + thumb}, "", ""},
		{"binding: bound", func(p *PowerShell) (string, error) {
			th, st, err := p.Binding(ctx, "Default Web Site")
			return th + " " + st, err
		}, `CERTFERRY_WINSTORE {"thumbprint":"` + strings.ToLower(thumb) + `","store":"My"}`, bindingScript, []string{"CERTFERRY_SITE=Default Web Site"}, thumb + ` LocalMachine\My`, ""},
		{"binding: web hosting store", func(p *PowerShell) (string, error) {
			th, st, err := p.Binding(ctx, "shop")
			return th + " " + st, err
		}, `CERTFERRY_WINSTORE {"thumbprint":"` + thumb + `","store":"WebHosting"}`, bindingScript, []string{"CERTFERRY_SITE=shop"}, thumb + ` LocalMachine\WebHosting`, ""},
		{"binding: none", func(p *PowerShell) (string, error) {
			th, st, err := p.Binding(ctx, "shop")
			return th + "|" + st, err
		}, `CERTFERRY_WINSTORE {"thumbprint":"","store":""}`, bindingScript, []string{"CERTFERRY_SITE=shop"}, "|", ""},
		{"binding: garbage thumbprint", func(p *PowerShell) (string, error) {
			_, _, err := p.Binding(ctx, "shop")
			return "", err
		}, `CERTFERRY_WINSTORE {"thumbprint":"xyz","store":"My"}`, bindingScript, []string{"CERTFERRY_SITE=shop"}, "", `thumbprint "xyz": must be 40 hex digits`},
		{"bind", func(p *PowerShell) (string, error) {
			return "", p.Bind(ctx, "Default Web Site", `LocalMachine\My`, strings.ToLower(thumb))
		}, `CERTFERRY_WINSTORE {}`, bindScript, []string{"CERTFERRY_SITE=Default Web Site", `CERTFERRY_STORE=LocalMachine\My`, "CERTFERRY_THUMBPRINT=" + thumb}, "", ""},
		{"bind: the script's error line", func(p *PowerShell) (string, error) {
			return "", p.Bind(ctx, "shop", `LocalMachine\My`, thumb)
		}, "CERTFERRY_WINSTORE_ERROR IIS site has no https binding: shop", bindScript, []string{"CERTFERRY_SITE=shop", `CERTFERRY_STORE=LocalMachine\My`, "CERTFERRY_THUMBPRINT=" + thumb}, "", "bind IIS site shop to " + thumb + ": IIS site has no https binding: shop"},
		{"bind: no result line", func(p *PowerShell) (string, error) {
			return "", p.Bind(ctx, "shop", `LocalMachine\My`, thumb)
		}, "something else\n", bindScript, []string{"CERTFERRY_SITE=shop", `CERTFERRY_STORE=LocalMachine\My`, "CERTFERRY_THUMBPRINT=" + thumb}, "", "PowerShell gave no result line"},
		{"unreadable answer", func(p *PowerShell) (string, error) {
			return "", p.Remove(ctx, `LocalMachine\My`, thumb)
		}, "CERTFERRY_WINSTORE {not json", removeScript, []string{`CERTFERRY_STORE=LocalMachine\My`, "CERTFERRY_THUMBPRINT=" + thumb}, "", "unreadable PowerShell answer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeRunner{stdout: c.stdout}
			got, err := c.do(New(f))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if len(f.calls) != 1 || f.calls[0].script != c.script {
				t.Fatal("did not run exactly the expected fixed script")
			}
			if strings.Join(f.calls[0].env, "|") != strings.Join(c.env, "|") {
				t.Errorf("env %q, want %q", f.calls[0].env, c.env)
			}
			if f.calls[0].stdin != nil {
				t.Errorf("stdin %q, want none", f.calls[0].stdin)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRefusedBeforeRunning(t *testing.T) {
	ctx := context.Background()
	hostile := []string{`LocalMachine\My'; Remove-Item C:\ -Recurse; '`, `LocalMachine\$(calc)`, `Registry\My`, `LocalMachine\My\x`, "", `LocalMachine\My` + "\n"}
	sites := []string{"$(calc)", "a'b", "a;b", "../x", "a..b", "", "-site", strings.Repeat("a", 200)}
	thumbs := []string{"", "xyz", thumb + "0", "$(calc)" + thumb[:33]}
	f := &fakeRunner{stdout: `CERTFERRY_WINSTORE {}`}
	p := New(f)
	for _, s := range hostile {
		if _, err := p.Import(ctx, s, []byte("x"), "pw"); err == nil {
			t.Errorf("Import accepted store %q", s)
		}
		if _, err := p.Has(ctx, s, thumb); err == nil {
			t.Errorf("Has accepted store %q", s)
		}
		if err := p.Bind(ctx, "shop", s, thumb); err == nil {
			t.Errorf("Bind accepted store %q", s)
		}
	}
	for _, s := range sites {
		if _, _, err := p.Binding(ctx, s); err == nil {
			t.Errorf("Binding accepted site %q", s)
		}
		if err := p.Bind(ctx, s, `LocalMachine\My`, thumb); err == nil {
			t.Errorf("Bind accepted site %q", s)
		}
	}
	for _, th := range thumbs {
		if err := p.Remove(ctx, `LocalMachine\My`, th); err == nil {
			t.Errorf("Remove accepted thumbprint %q", th)
		}
	}
	if _, err := p.Import(ctx, `LocalMachine\My`, nil, "pw"); err == nil {
		t.Error("Import accepted an empty PFX")
	}
	if _, err := p.Import(ctx, `LocalMachine\My`, make([]byte, MaxPFX+1), "pw"); err == nil {
		t.Error("Import accepted an oversized PFX")
	}
	if err := p.Bind(ctx, "shop", `CurrentUser\My`, thumb); err == nil {
		t.Error("Bind accepted a CurrentUser store")
	}
	if len(f.calls) != 0 {
		t.Fatalf("%d scripts ran for refused input", len(f.calls))
	}
}

func TestFailures(t *testing.T) {
	ctx := context.Background()
	password := "S3cret-Pa55word-0123456789abcdef"
	t.Run("the password never reaches an error", func(t *testing.T) {
		f := &fakeRunner{stdout: "CERTFERRY_WINSTORE_ERROR The specified network password is not correct: " + password, err: errors.New("exit status 1")}
		_, err := New(f).Import(ctx, `LocalMachine\My`, []byte("x"), password)
		if err == nil || strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "password is not correct") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("a run that fails without an error line reports stderr", func(t *testing.T) {
		f := &fakeRunner{stderr: "Import-Module : The specified module 'WebAdministration' was not loaded\r\n  + more", err: errors.New("exit status 1")}
		_, _, err := New(f).Binding(ctx, "shop")
		if err == nil || !strings.Contains(err.Error(), "exit status 1 (Import-Module : The specified module 'WebAdministration' was not loaded + more)") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("an error line is one short line", func(t *testing.T) {
		f := &fakeRunner{stdout: "CERTFERRY_WINSTORE_ERROR " + strings.Repeat("e\x1b", 400)}
		err := New(f).Remove(ctx, `LocalMachine\My`, thumb)
		if err == nil || len(err.Error()) > 320 || strings.ContainsRune(err.Error(), 0x1b) {
			t.Fatalf("error %q", err)
		}
	})
	t.Run("import answers a bad thumbprint", func(t *testing.T) {
		f := &fakeRunner{stdout: `CERTFERRY_WINSTORE {"thumbprint":""}`}
		if _, err := New(f).Import(ctx, `LocalMachine\My`, []byte("x"), "pw"); err == nil {
			t.Fatal("accepted an empty thumbprint")
		}
	})
	t.Run("powershell.exe runs only on Windows", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Fatal("this test describes non-Windows hosts")
		}
		_, err := New(nil).Has(ctx, `LocalMachine\My`, thumb)
		if !errors.Is(err, ErrNotWindows) {
			t.Fatalf("error %v, want ErrNotWindows", err)
		}
	})
}

// The scripts are fixed: they read values only from $env:CERTFERRY_*,
// carry no Go formatting verbs or template markers, and their brackets
// balance (a cheap syntax check where PowerShell cannot parse them).
func TestScripts(t *testing.T) {
	for name, s := range allScripts {
		t.Run(name, func(t *testing.T) {
			for _, bad := range []string{"%s", "%v", "%q", "{{", "}}", "Invoke-Expression", "iex "} {
				if strings.Contains(s, bad) {
					t.Errorf("script holds %q", bad)
				}
			}
			for _, line := range strings.Split(s, "\n") {
				for i := strings.Index(line, "$env:"); i >= 0; i = strings.Index(line, "$env:") {
					line = line[i+5:]
					if !strings.HasPrefix(line, "CERTFERRY_") {
						t.Errorf("script reads an environment variable other than CERTFERRY_*: %q", line)
					}
				}
			}
			pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
			var stack []rune
			inQuote := false
			for _, r := range s {
				switch {
				case r == '\'':
					inQuote = !inQuote
				case inQuote:
				case r == '(' || r == '{' || r == '[':
					stack = append(stack, r)
				case pairs[r] != 0:
					if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
						t.Fatalf("unbalanced %q", r)
					}
					stack = stack[:len(stack)-1]
				}
			}
			if len(stack) != 0 || inQuote {
				t.Fatalf("unbalanced: %q open, quote open %v", string(stack), inQuote)
			}
			if !strings.Contains(s, "CERTFERRY_WINSTORE_ERROR") || !strings.Contains(s, "Done @{") {
				t.Error("script does not follow the output protocol")
			}
		})
	}
	t.Run("only import reads the password and stdin", func(t *testing.T) {
		for name, s := range allScripts {
			reads := strings.Contains(s, "$env:"+envPassword) || strings.Contains(s, "[Console]::In")
			if reads != (name == "import") {
				t.Errorf("%s: reads password or stdin = %v", name, reads)
			}
		}
	})
}

func TestEncodeCommand(t *testing.T) {
	raw, err := base64.StdEncoding.DecodeString(encodeCommand("Done @{ x = 'é' }"))
	if err != nil {
		t.Fatal(err)
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	if got := string(utf16.Decode(u)); got != "Done @{ x = 'é' }" {
		t.Fatalf("round trip %q", got)
	}
}
