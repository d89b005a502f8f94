"""Repositories in Chromium (issue 16): a steward creates a repository on the console, a
member pushes a commit from the host with real ``git`` and a personal token, and the
console shows the commit, the file and the rendered notebook; the steward archives it and
the next push is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datalibrary.auth import projects
from datalibrary.auth.permissions import Principal
from tests.test_repos import commit_file, git, url_for
from tests.test_results_grid_browser import sign_in

pytestmark = pytest.mark.browser


def test_create_push_and_browse_in_the_console(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    platform.add_user("stella", "steward")
    platform.as_user("alice")
    with platform.db.session() as session:
        system = Principal.system("test")
        projects.create_project(session, system, "oncology")
        projects.add_member(session, system, "oncology", "alice")
    errors: list[str] = []

    steward = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    steward.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(steward, url, "/repos", user="stella")
    steward.select_option("#repo-project", "oncology")
    steward.fill("#repo-name", "survival")
    steward.fill("#repo-description", "survival analysis")
    steward.click("#create")
    steward.wait_for_url(f"{url}/repos/oncology/survival?created=1")
    assert "Repository oncology/survival created." in steward.inner_text("main")
    assert steward.locator("#empty-repo").is_visible()
    assert steward.inner_text("#clone-url") == f"{url}/git/oncology/survival.git"

    # alice pushes from her laptop (the host) with git and her personal token
    work = tmp_path / "work"
    git("clone", "-q", url_for(url, "alice", platform.tokens["alice"], "oncology/survival"), str(work))
    commit_file(work, "src/model.py", "def hazard(t):\n    return 0.1 * t\n", "Cox model <draft>")
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# Kaplan-Meier"},
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "source": "print(42)",
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": "42\n"},
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"text/html": "<script>window.pwned=1</script>"},
                    },
                ],
            },
        ],
    }
    commit_file(work, "km.ipynb", json.dumps(notebook), "notebook")
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work).stdout.strip()

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, url, "/repos", user="alice")
    page.click('a[href="/repos/oncology/survival"]')
    page.wait_for_selector(f'#commits tr[data-commit="{head}"]')
    assert "notebook" in page.inner_text(f'#commits tr[data-commit="{head}"]')
    assert "Cox model <draft>" in page.inner_text("#commits")
    assert "git clone datalibrary:oncology/survival.git" in page.inner_text("#clone-workspace")
    page.screenshot(path=str(tmp_path / "repository.png"), full_page=True)
    page.click('#tree a:text-is("src/")')
    page.click('#tree a:text-is("model.py")')
    page.wait_for_selector("pre.file-text")
    assert "return 0.1 * t" in page.inner_text("pre.file-text")
    page.go_back()
    page.go_back()
    page.click('#tree a:text-is("km.ipynb")')
    page.wait_for_selector(".notebook .nb-markdown h1")
    assert page.inner_text(".notebook .nb-markdown h1") == "Kaplan-Meier"
    assert "42" in page.inner_text(".notebook pre.nb-output")
    assert "output not shown here (text/html)" in page.inner_text(".notebook")  # HTML is never rendered
    assert page.evaluate("window.pwned") is None, "notebook HTML never runs"
    page.screenshot(path=str(tmp_path / "notebook.png"))
    assert page.locator("button.archive").count() == 0, "members do not archive"

    # the steward archives it in the console; the next push is refused
    steward.goto(f"{url}/repos")
    steward.once("dialog", lambda dialog: dialog.accept())
    steward.click('tr[data-repo="survival"] button.archive')
    steward.wait_for_selector('tr[data-repo="survival"][data-archived="true"]')
    commit_file(work, "b.py", "x = 2\n", "after archive")
    refused = git("push", "-q", "origin", "HEAD:main", cwd=work, check=False)
    assert refused.returncode != 0 and "archived" in refused.stderr
    assert errors == [], errors
