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
