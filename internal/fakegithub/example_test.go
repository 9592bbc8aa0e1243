package fakegithub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/internal/fakegithub"
)

// Example shows the wiring tern uses against the fake: an App transport for
// JWTs, an installation transport for tokens, and go-github pointed at URL.
func Example() {
	gh, err := fakegithub.New()
	if err != nil {
		panic(err)
	}
	defer gh.Close()
	gh.AddInstallation("acme/shop", 1)
	gh.OpenPR("acme/shop", 7, "1111111111111111111111111111111111111111", map[string]string{
		"tern.yaml": "databases: []\n",
	})

	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, gh.AppID, gh.PrivateKeyPEM)
	if err != nil {
		panic(err)
	}
	atr.BaseURL = gh.URL
	itr := ghinstallation.NewFromAppsTransport(atr, 1)
	itr.BaseURL = gh.URL
	c := github.NewClient(&http.Client{Transport: itr})
	c.BaseURL, _ = url.Parse(gh.URL)

	ctx := context.Background()
	if _, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, &github.IssueComment{Body: github.String("Plan: no changes")}); err != nil {
		panic(err)
	}
	_, _, err = c.Checks.CreateCheckRun(ctx, "acme", "shop", github.CreateCheckRunOptions{
		Name: "tern", HeadSHA: "1111111111111111111111111111111111111111", Conclusion: github.String("success"),
	})
	fmt.Println("conclusion without status:", err != nil)

	for _, cm := range gh.Comments("acme/shop", 7) {
		fmt.Printf("%s: %s\n", cm.GetUser().GetLogin(), cm.GetBody())
	}
	// Output:
	// conclusion without status: true
	// tern[bot]: Plan: no changes
}
