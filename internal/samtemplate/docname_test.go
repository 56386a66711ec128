package samtemplate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// SSM's CreateDocument Name: the model's DocumentName pattern, and "You
// can't use the following strings as document name prefixes. These are
// reserved by Amazon Web Services" (CreateDocument, Systems Manager API
// Reference). CloudFormation stack names: "[a-zA-Z][-a-zA-Z0-9]*", at most
// 128 characters (AWS::CloudFormation::Stack / CreateStack StackName).
var (
	documentNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_\-.]{3,128}$`)
	reservedDocPrefixes = []string{"aws", "amazon", "amzn", "AWSEC2", "AWSConfigRemediation", "AWSSupport"}
)

// The install document's name is one SSM accepts whatever the stack is
// called: a stack named "aws-certs" (a reserved prefix) or with a
// 128-character name must not fail at CreateDocument.
func TestDocumentNameForAnyStackName(t *testing.T) {
	raw, _ := readTemplate(t)
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	name := lookup(&root, "Resources", "InstallDocument", "Properties", "Name")
	if name == nil {
		t.Fatal("InstallDocument has no Name")
	}
	for _, stack := range []string{"certferry", "aws-certs", "Amazon", "amzn1", "AWSSupport-x", "s" + strings.Repeat("x", 127)} {
		pseudo := map[string]string{
			"AWS::StackName": stack, "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
			"AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/" + stack + "/1c2fa620-982a-11e3-aff7-50e2416294e0",
		}
		got, err := evalString(name, pseudo)
		if err != nil {
			t.Fatalf("InstallDocument Name: %v", err)
		}
		if !documentNamePattern.MatchString(got) {
			t.Errorf("stack %q: document name %q does not match SSM's %s", stack, got, documentNamePattern)
		}
		for _, p := range reservedDocPrefixes {
			if strings.HasPrefix(strings.ToLower(got), strings.ToLower(p)) {
				t.Errorf("stack %q: document name %q starts with the reserved prefix %q", stack, got, p)
			}
		}
	}
}

func lookup(n *yaml.Node, path ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// evalString evaluates the intrinsic functions a name may use (!Ref of a
// pseudo parameter, !Sub, !Join, !Select, !Split) in short form.
func evalString(n *yaml.Node, pseudo map[string]string) (string, error) {
	v, err := eval(n, pseudo)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%v is not a string", v)
	}
	return s, nil
}

func eval(n *yaml.Node, pseudo map[string]string) (any, error) {
	switch n.Tag {
	case "!Ref":
		v, ok := pseudo[n.Value]
		if !ok {
			return nil, fmt.Errorf("!Ref %s: not a pseudo parameter", n.Value)
		}
		return v, nil
	case "!Sub":
		var err error
		out := regexp.MustCompile(`\$\{([^}]+)\}`).ReplaceAllStringFunc(n.Value, func(m string) string {
			v, ok := pseudo[m[2:len(m)-1]]
			if !ok {
				err = fmt.Errorf("!Sub %s: unknown variable", m)
			}
			return v
		})
		return out, err
	case "!Join", "!Select", "!Split":
		if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
			return nil, fmt.Errorf("%s takes two arguments", n.Tag)
		}
		a, err := eval(n.Content[0], pseudo)
		if err != nil {
			return nil, err
		}
		b, err := eval(n.Content[1], pseudo)
		if err != nil {
			return nil, err
		}
		switch n.Tag {
		case "!Join":
			var parts []string
			for _, x := range b.([]any) {
				parts = append(parts, x.(string))
			}
			return strings.Join(parts, a.(string)), nil
		case "!Split":
			var out []any
			for _, x := range strings.Split(b.(string), a.(string)) {
				out = append(out, x)
			}
			return out, nil
		default:
			i, err := strconv.Atoi(a.(string))
			list := b.([]any)
			if err != nil || i < 0 || i >= len(list) {
				return nil, fmt.Errorf("!Select %v out of %d", a, len(list))
			}
			return list[i], nil
		}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		var out []any
		for _, c := range n.Content {
			v, err := eval(c, pseudo)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot evaluate %s node %q", n.Tag, n.Value)
}
