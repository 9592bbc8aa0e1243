package e2e

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakeps"
	"github.com/ternhq/tern/internal/testdb"
)

// Round 2 of the contract scenarios: what round 1 (contract_*_test.go)
// left out. The same rule holds: only CONTRACT.md's surface is asserted.

// psToken is the PlanetScale service token of the stand-in; it must never
// reach a comment, check run or log.
const psToken = "pscale_tkn_e2e_c2_secret"

// newContractPS starts the scenario of newContract with production on
// PlanetScale: the stand-in's main branch, seeded with usersV1, reached
// through `planetscale: {api_url: <stand-in>, tls: false}`. c.prod is the
// main branch's database.
func newContractPS(t *testing.T, recovery string) (*cworld, *fakeps.Server) {
	t.Helper()
	w := newWorld(t)
	staging, stagingName := testdb.Open(t, "e2e_c2_staging")
	ps, err := fakeps.New(fakeps.Options{
		ServerDSN: testdb.ServerDSN(), Organization: "acme", Database: "shop",
		ServiceTokenID: "e2e-token-id", ServiceToken: psToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	prod, err := sql.Open("mysql", ps.MainDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	for _, db := range []*sql.DB{staging, prod} {
		if _, err := db.Exec(usersV1); err != nil {
			t.Fatal(err)
		}
	}
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, stagingName)
	w.env["PS_TOKEN"] = psToken
	targets := fmt.Sprintf(`  - repository: acme/shop
    database: shop
    environment: staging
    mysql:
      dsn: ${SHOP_STAGING_DSN}
      lock_wait_timeout: 1s
  - repository: acme/shop
    database: shop
    environment: production
    planetscale:
      organization: acme
      database: shop
      branch: main
      service_token_id: e2e-token-id
      service_token: ${PS_TOKEN}
      api_url: %s
      tls: false`, ps.URL)
	cfg := w.config(targets, recovery)
	w.gh.SetPermission(repoName, "alice", "write")
	w.gh.SetPermission(repoName, "mallory", "read")
	c := &cworld{world: w, cfg: cfg, staging: staging, prod: prod, stagingName: stagingName}
	c.srv = w.serve(cfg)
	t.Cleanup(func() { c.noPSToken("tern serve", c.srv.stdout.String()+c.srv.stderr.String()) })
	return c, ps
}

// noPSToken fails the test when out holds the PlanetScale service token,
// and checks the world's other secrets as noSecrets does.
func (c *cworld) noPSToken(what, out string) {
	c.t.Helper()
	c.noSecrets(what, out)
	if strings.Contains(out, psToken) {
		c.t.Errorf("%s printed the PlanetScale service token", what)
	}
}
