# What scripts/test runs, from what this machine has: sourced by scripts/test, and by
# tests/scripts/test_test_plan.py with made-up facts. No side effects; it only sets three variables.
#
#   test_plan TIER ROOT REDIS CHROMIUM
#     TIER      full | fast
#     ROOT      yes when run as root (then scripts/test has installed what was missing)
#     REDIS     yes when redis-server is installed
#     CHROMIUM  yes when /usr/bin/chromium is installed
#   sets
#     skip_parts  the parts the tests must skip, not fail on, when missing (VCS_TEST_SKIP; see tests/parts.py)
#     multinode   yes when the multi-node tier runs (it needs root for unshare: scripts/isolated)
#     skipped     the one line scripts/test ends with: "skipped: nothing" or what it skipped and why
test_plan() {
  local tier=$1 root=$2 redis=$3 chromium=$4
  local reasons=()
  skip_parts="" multinode=no
  if [ "$tier" = fast ]; then
    reasons+=("integration and multinode tiers (fast tier; scripts/test runs them)")
  elif [ "$root" = yes ]; then
    multinode=yes
  else
    reasons+=("multinode tier (needs root for unshare: sudo scripts/test)")
  fi
  if [ "$redis" != yes ]; then
    skip_parts+=" redis-server"
    reasons+=("Redis tests (redis-server not installed; as root: apt-get install redis-server)")
  fi
  if [ "$tier" = full ] && [ "$chromium" != yes ]; then
    skip_parts+=" chromium"
    reasons+=("browser tests (chromium not installed; as root: apt-get install chromium)")
  fi
  skip_parts=${skip_parts# }
  skipped="skipped: nothing"
  if [ ${#reasons[@]} -gt 0 ]; then
    skipped="skipped: ${reasons[0]}"
    local reason
    for reason in "${reasons[@]:1}"; do skipped+="; $reason"; done
  fi
}
