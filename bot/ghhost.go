package bot

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// uploadURLFor returns the uploads endpoint that goes with an API base
// URL: https://uploads.github.com/ for https://api.github.com/, and
// https://HOST/api/uploads/ for GitHub Enterprise Server's
// https://HOST/api/v3/. Any other URL (a stand-in) serves both.
func uploadURLFor(api *url.URL) *url.URL {
	u := *api
	switch {
	case strings.EqualFold(u.Host, "api.github.com"):
		u.Host, u.Path = "uploads.github.com", "/"
	case strings.HasSuffix(u.Path, "/api/v3/"):
		u.Path = strings.TrimSuffix(u.Path, "v3/") + "uploads/"
	}
	return &u
}

// botLogin returns the login of this App's bot user ("<slug>[bot]"), the
// author of every comment tern writes, read once from GET /app.
func (b *Bot) botLogin(ctx context.Context) (string, error) {
	b.mu.Lock()
	login := b.login
	b.mu.Unlock()
	if login != "" {
		return login, nil
	}
	app, _, err := b.appClient().Apps.Get(ctx, "")
	if err != nil {
		return "", fmt.Errorf("read the App (GET /app): %w", err)
	}
	if app.GetSlug() == "" {
		return "", fmt.Errorf("read the App (GET /app): no slug")
	}
	login = app.GetSlug() + "[bot]"
	b.mu.Lock()
	b.login = login
	b.mu.Unlock()
	return login, nil
}

// webURLFor returns the web root that goes with an API base URL:
// https://HOST/ for GitHub Enterprise Server's https://HOST/api/v3/, and
// https://github.com/ otherwise.
func webURLFor(api *url.URL) string {
	if strings.HasSuffix(api.Path, "/api/v3/") {
		u := *api
		u.Path = strings.TrimSuffix(u.Path, "api/v3/")
		return u.String()
	}
	return "https://github.com/"
}

// detailsURL is where a check run's "Details" link leads: the PR's apply
// comment for a per-environment run that has an apply, else the PR's plan
// comment, else the PR. It is "" when the commit's PR is not known yet.
func (b *Bot) detailsURL(ctx context.Context, repo, sha, checkName string) string {
	n, _, err := b.st.Ref(ctx, repo, shaPRKey(sha))
	if err != nil || n == 0 {
		return ""
	}
	pr := fmt.Sprintf("%s%s/pull/%d", webURLFor(b.apiURL), repo, n)
	if parts := strings.SplitN(checkName, "/", 3); len(parts) == 3 {
		if a, err := b.st.LatestApply(ctx, repo, int(n), parts[1], parts[2]); err == nil {
			if id, _, err := b.st.Ref(ctx, repo, applyCommentKey(a.ID)); err == nil && id != 0 {
				return fmt.Sprintf("%s#issuecomment-%d", pr, id)
			}
		}
	}
	if id, _, err := b.st.Ref(ctx, repo, planCommentKey(int(n))); err == nil && id != 0 {
		return fmt.Sprintf("%s#issuecomment-%d", pr, id)
	}
	return pr
}
