#!/usr/bin/env python3
"""Drive glenv's GitLab-compatible Environments API with python-gitlab, a
GitLab client nobody here wrote, exactly as a GitLab user would.

Environment: GLENV_URL (glenv's base URL), GLENV_TOKEN (a glenv API token),
PROJECT (the GitLab project's id or path, e.g. group/app). It lists,
creates, edits, stops and deletes environments and exits non-zero, naming
each mismatch, when glenv answers differently from GitLab.
"""

import os
import sys

import gitlab

failures = []


def expect(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")


def expect_error(what, exc_type, code, call):
    try:
        call()
    except exc_type as e:
        expect(f"{what}: status", e.response_code, code)
        return
    except gitlab.exceptions.GitlabError as e:
        failures.append(f"{what}: raised {type(e).__name__} {e.response_code}, want {exc_type.__name__} {code}")
        return
    failures.append(f"{what}: succeeded, want {exc_type.__name__} {code}")


def main():
    gl = gitlab.Gitlab(os.environ["GLENV_URL"], private_token=os.environ["GLENV_TOKEN"])
    # lazy: only the environments API is asked, never GET /projects/:id.
    project = gl.projects.get(os.environ["PROJECT"], lazy=True)
    envs = project.environments
    prefix = f"review/py-{os.getpid()}"

    before = len(list(envs.list(iterator=True, per_page=2)))

    created = [envs.create({"name": f"{prefix}-{i}", "external_url": f"https://py-{i}.example.com"}) for i in range(3)]
    first = created[0]
    expect("create: state", first.state, "available")
    expect("create: tier guessed from the name", first.tier, "development")
    expect("create: external_url", first.external_url, "https://py-0.example.com")
    expect_error("create: duplicate name", gitlab.exceptions.GitlabCreateError, 400,
                 lambda: envs.create({"name": first.name}))
    expect_error("create: name ending with /", gitlab.exceptions.GitlabCreateError, 400,
                 lambda: envs.create({"name": "review/"}))

    # Pagination follows the Link / X-Next-Page headers two at a time.
    listed = [e.name for e in envs.list(iterator=True, per_page=2)]
    expect("list: count across pages", len(listed), before + 3)
    for e in created:
        expect(f"list: {e.name} present", e.name in listed, True)
    expect("list: search by prefix", sorted(e.name for e in envs.list(search=prefix, iterator=True)),
           sorted(e.name for e in created))
    expect("list: name", [e.name for e in envs.list(name=first.name)], [first.name])
    expect_error("list: 2-character search", gitlab.exceptions.GitlabListError, 400,
                 lambda: envs.list(search="re"))

    got = envs.get(first.id)
    expect("get: name", got.name, first.name)
    expect("get: last_deployment", got.last_deployment, None)
    expect_error("get: unknown id", gitlab.exceptions.GitlabGetError, 404, lambda: envs.get(999999999))

    got.external_url = "https://edited.example.com"
    got.tier = "staging"
    got.save()
    again = envs.get(first.id)
    expect("edit: external_url", again.external_url, "https://edited.example.com")
    expect("edit: tier", again.tier, "staging")

    expect_error("delete: not stopped", gitlab.exceptions.GitlabDeleteError, 403, lambda: envs.delete(first.id))
    result = again.stop()
    expect("stop: state", result.get("state"), "stopped")
    expect("stop: listed as stopped", first.name in [e.name for e in envs.list(states="stopped", iterator=True)], True)
    envs.delete(first.id)
    expect_error("get: deleted", gitlab.exceptions.GitlabGetError, 404, lambda: envs.get(first.id))

    for e in created[1:]:
        e.stop()
        e.delete()
    expect("cleanup: count", len(list(envs.list(iterator=True))), before)

    if failures:
        for f in failures:
            print("MISMATCH", f, file=sys.stderr)
        return 1
    print(f"python-gitlab {gitlab.__version__}: list, create, edit, stop and delete behave as on GitLab")
    return 0


if __name__ == "__main__":
    sys.exit(main())
