#!/bin/sh
# The model diff of a branch as a pull-request comment (docs/review.md, "In CI").
#
#   sh docs/ci/pr-diff.sh [BASE] [OUT]   write the Markdown of 'git model diff BASE...HEAD' to OUT
#                                        (BASE: origin/main, OUT: model-diff.md by default)
#   POST=1 PR=123 sh docs/ci/pr-diff.sh  ... and post OUT on pull request 123 with the GitHub CLI
#                                        (GH_TOKEN in the environment)
set -eu
base="${1:-origin/main}"
out="${2:-model-diff.md}"
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
    echo "pr-diff: '$base' is not a commit in this clone; fetch it (git fetch origin main) or check out with fetch-depth: 0" >&2
    exit 1
fi
# written beside OUT, then renamed: a failed diff leaves no half comment behind
git model diff --markdown "$base...HEAD" > "$out.tmp"
mv "$out.tmp" "$out"
if [ "${POST:-0}" = 1 ]; then
    : "${PR:?set PR to the pull request number}"
    # one comment per pull request, updated on each push
    gh pr comment "$PR" --body-file "$out" --edit-last 2>/dev/null || gh pr comment "$PR" --body-file "$out"
fi
