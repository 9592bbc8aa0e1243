package fakegithub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Sign returns GitHub's X-Hub-Signature-256 value for body: "sha256=<hex>".
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver POSTs body to url as GitHub delivers a webhook: X-GitHub-Event,
// X-GitHub-Delivery and X-Hub-Signature-256 signed with secret. The caller
// closes the response body.
func Deliver(ctx context.Context, url, event, deliveryID, secret string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("deliver %s %s: %w", event, deliveryID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/fakegithub")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", deliveryID)
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	req.Header.Set("X-Hub-Signature-256", Sign(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("deliver %s %s: %w", event, deliveryID, err)
	}
	return resp, nil
}

// Fixture reads the webhook payload fixture name from testdata/github/ at
// the module root, found by walking up from the working directory to go.mod.
func Fixture(name string) ([]byte, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("fixture %s: %w", name, err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, fmt.Errorf("fixture %s: no go.mod above the working directory", name)
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, "testdata", "github", name))
	if err != nil {
		return nil, fmt.Errorf("fixture %s: %w", name, err)
	}
	return b, nil
}

// Deletion, as a value in Edit's edits, removes the key instead of setting it.
type Deletion struct{}

// Edit sets dotted paths in a JSON payload, creating missing (or null)
// objects on the way, and returns the re-encoded payload. A path segment that is a number
// indexes an array. Paths are applied in sorted order, so a parent is set
// before its children. A Deletion value removes the key.
//
//	Edit(p, map[string]any{"comment.body": "/tern apply -e staging", "issue.number": 7})
func Edit(payload []byte, edits map[string]any) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("edit payload: %w", err)
	}
	keys := make([]string, 0, len(edits))
	for k := range edits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := set(root, strings.Split(k, "."), edits[k]); err != nil {
			return nil, fmt.Errorf("edit %s: %w", k, err)
		}
	}
	out, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("edit payload: %w", err)
	}
	return out, nil
}

func set(node any, parts []string, v any) error {
	head, rest := parts[0], parts[1:]
	switch n := node.(type) {
	case map[string]any:
		if len(rest) == 0 {
			if _, del := v.(Deletion); del {
				delete(n, head)
			} else {
				n[head] = v
			}
			return nil
		}
		switch child := n[head].(type) {
		case map[string]any, []any:
			return set(child, rest, v)
		case nil:
			m := map[string]any{}
			n[head] = m
			return set(m, rest, v)
		default:
			return fmt.Errorf("%q holds %v, not an object", head, child)
		}
	case []any:
		i, err := strconv.Atoi(head)
		if err != nil || i < 0 || i >= len(n) {
			return fmt.Errorf("index %q out of range for array of %d", head, len(n))
		}
		if len(rest) == 0 {
			if _, del := v.(Deletion); del {
				return errors.New("cannot delete an array element")
			}
			n[i] = v
			return nil
		}
		if n[i] == nil {
			n[i] = map[string]any{}
		}
		return set(n[i], rest, v)
	default:
		return fmt.Errorf("%q is not inside an object or array", head)
	}
}

// repoEdits points every repository object of a payload at repo.
func repoEdits(repo string, prefixes ...string) (map[string]any, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" {
		return nil, fmt.Errorf("repository %q is not owner/name", repo)
	}
	e := map[string]any{}
	for _, p := range prefixes {
		e[p+"full_name"] = repo
		e[p+"name"] = name
		e[p+"owner.login"] = owner
		e[p+"html_url"] = "https://github.com/" + repo
	}
	return e, nil
}

// PRPayload returns a pull_request webhook payload for action (opened,
// reopened, synchronize, closed, or merged for a merged close), built from
// the fixture pull_request.<action>.json and edited to name repo, number,
// headSHA and installationID.
func PRPayload(action, repo string, number int, headSHA string, installationID int64) ([]byte, error) {
	file := "pull_request." + action + ".json"
	if action == "merged" {
		file = "pull_request.closed.merged.json"
	}
	b, err := Fixture(file)
	if err != nil {
		return nil, err
	}
	e, err := repoEdits(repo, "repository.", "pull_request.base.repo.", "pull_request.head.repo.")
	if err != nil {
		return nil, fmt.Errorf("pr payload: %w", err)
	}
	e["number"] = number
	e["pull_request.number"] = number
	e["pull_request.head.sha"] = headSHA
	e["pull_request.head.ref"] = fmt.Sprintf("pr-%d", number)
	e["pull_request.base.ref"] = "main"
	e["pull_request.base.sha"] = baseSHA
	e["pull_request.html_url"] = fmt.Sprintf("https://github.com/%s/pull/%d", repo, number)
	e["installation.id"] = installationID
	if action == "synchronize" {
		e["after"] = headSHA
	}
	return Edit(b, e)
}

// CommentPayload returns an issue_comment "created" webhook payload for a
// comment on pull request number, built from issue_comment.created.json and
// edited to name repo, the comment's id, author (userType "User" or "Bot")
// and body, and installationID.
func CommentPayload(repo string, number int, commentID int64, user, userType, body string, installationID int64) ([]byte, error) {
	b, err := Fixture("issue_comment.created.json")
	if err != nil {
		return nil, err
	}
	e, err := repoEdits(repo, "repository.")
	if err != nil {
		return nil, fmt.Errorf("comment payload: %w", err)
	}
	if userType == "" {
		userType = "User"
	}
	e["issue.number"] = number
	e["issue.html_url"] = fmt.Sprintf("https://github.com/%s/pull/%d", repo, number)
	e["issue.pull_request.html_url"] = fmt.Sprintf("https://github.com/%s/pull/%d", repo, number)
	e["comment.id"] = commentID
	e["comment.body"] = body
	e["comment.user.login"] = user
	e["comment.user.type"] = userType
	e["sender.login"] = user
	e["sender.type"] = userType
	e["installation.id"] = installationID
	return Edit(b, e)
}
