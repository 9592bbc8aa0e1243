package report

import (
	"fmt"
	"strings"

	"github.com/ternhq/tern/plan"
)

// Usage lists the commands, one per line.
const Usage = "```\n" +
	"/tern plan [-d DB] [-e ENV]                    plan every database and environment, or the ones named\n" +
	"/tern apply -e ENV [-d DB] [--allow-unsafe] [--allow-blocking]\n" +
	"                                               apply this PR's plan to ENV (write access)\n" +
	"/tern unlock [-d DB] [-e ENV]                  release this PR's locks (write access)\n" +
	"/tern retry -e ENV [-d DB]                     retry a failed apply now (write access)\n" +
	"/tern cancel -e ENV [-d DB]                    stop a pending or retrying apply (write access)\n" +
	"/tern status                                   this PR's applies, states and attempts\n" +
	"/tern help                                     this text\n" +
	"```\n"

// Help renders the reply to `/tern help`.
func Help() string {
	return "### tern commands\n\n" + Usage + "\n" +
		"Environments are applied in the order `tern.yaml` lists them: each needs the one before it applied with the same schema first. " +
		"The first apply to an environment locks it for this PR until the PR is merged or closed, or `/tern unlock`.\n"
}

// Refusal renders a reply refusing a command: why, then what to do.
func Refusal(command, why, todo string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "🚫 %s refused: %s\n", code(command), why)
	if todo != "" {
		b.WriteString("\n" + todo + "\n")
	}
	return clip(b.String(), MaxComment)
}

// BadCommand renders the reply to a comment tern could not parse.
func BadCommand(command, problem string) string {
	return clip(fmt.Sprintf("🚫 %s: %s\n\nUsage:\n\n%s", code(oneLine(command)), problem, Usage), MaxComment)
}

// RefusePermission says the commenter lacks write access.
func RefusePermission(command, user, role string) string {
	if role == "" {
		role = "none"
	}
	return Refusal(command, fmt.Sprintf("@%s has %s access to this repository; it needs `write` (or maintain or admin).", user, code(role)),
		"Ask someone with write access to run it.")
}

// RefuseLock says another PR holds the target's lock.
func RefuseLock(command, db, env string, holder int) string {
	return Refusal(command, fmt.Sprintf("%s is locked by #%d.", code(db+"/"+env), holder),
		fmt.Sprintf("The lock is released when #%d is merged or closed, or when someone comments `/tern unlock -e %s` on #%d.", holder, env, holder))
}

// RefusePromotion says an earlier environment must be applied first.
func RefusePromotion(command, db, env, previous string) string {
	return Refusal(command, fmt.Sprintf("%s must be applied to %s first, with this same schema, before %s.", code(db), code(previous), code(env)),
		fmt.Sprintf("Comment `/tern apply -e %s` first.", previous))
}

// RefuseRequirement says an apply requirement of tern.yaml is not met.
func RefuseRequirement(command, requirement, detail string) string {
	return Refusal(command, fmt.Sprintf("requirement %s is not met: %s", code(requirement), detail),
		"`apply_requirements` in the base branch's `tern.yaml` asks for it.")
}

// RefuseUnsafe lists the unsafe statements that need --allow-unsafe.
func RefuseUnsafe(command, db, env string, p *plan.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the plan for %s has unsafe changes:\n\n", code(db+"/"+env))
	for _, f := range p.Unsafe() {
		ddl := ""
		if f.Statement >= 0 && f.Statement < len(p.Statements) {
			ddl = p.Statements[f.Statement].DDL
		}
		fmt.Fprintf(&b, "- %s: %s", code(subject(f)), oneLine(f.Message))
		if ddl != "" {
			fmt.Fprintf(&b, " (%s)", code(clip(oneLine(ddl), 300)))
		}
		b.WriteString("\n")
	}
	return Refusal(command, b.String(), fmt.Sprintf("If you mean it, comment `%s --allow-unsafe`.", strings.TrimSuffix(command, " --allow-unsafe")))
}

// RefuseStale says the plan changed since it was shown.
func RefuseStale(command, db, env string) string {
	return Refusal(command, fmt.Sprintf("the plan for %s changed since it was shown (new commits or a changed live schema). The plan comment now shows the new DDL.", code(db+"/"+env)),
		"Review it, then run the command again.")
}

// RefuseUnplanned says there is no plan shown yet for the target.
func RefuseUnplanned(command, db, env string) string {
	return Refusal(command, fmt.Sprintf("no plan for %s had been shown on this PR. The plan comment now shows it.", code(db+"/"+env)),
		"Review it, then run the command again.")
}

// RefuseActive says the target already has an apply under way.
func RefuseActive(command, db, env string, applyID int64, pr int, state string) string {
	return Refusal(command, fmt.Sprintf("%s already has apply #%d of #%d in state %s.", code(db+"/"+env), applyID, pr, code(state)),
		"Wait for it to end, or `/tern cancel` it.")
}

// Done renders a short confirmation reply.
func Done(text string) string { return clip(text, MaxComment) }
