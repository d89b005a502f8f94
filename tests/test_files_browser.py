"""The file page in Chromium: a granted scientist opens a file from the collection page, sees
what the profile did to each attribute, and the thumbnail loads through the session (the same
grant, metered); an ultrasound admitted on a review decision shows no picture."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from datalibrary.files import service
from datalibrary.files.models import FileRead
from tests.helpers import PASSWORD
from tests.lake_helpers import SYSTEM
from tests.test_browser import watch_errors
from tests.test_files_dicom import SUBJECTS, image
from tests.test_files_governance import _grant, _us

pytestmark = pytest.mark.browser


def test_file_page_with_thumbnail_and_attribute_actions(browser, live_platform) -> None:
    platform, url = live_platform
    a = list(SUBJECTS)[0]
    with platform.db.session() as session:
        service.create_collection(
            session, SYSTEM, platform.settings, "study1.page", burned_in_reviewed={"US": "no text, checked"}
        )
    with platform.db.session() as session:
        service.ingest_files(
            session, SYSTEM, platform.settings, "study1.page",
            [("ct.dcm", image(a, "1.2.3.79.1", "1.2.3.79.1.1", "1.2.3.79.1.1.1")), ("us.dcm", _us(a))],
        )  # fmt: skip
    platform.add_user("sci", "scientist")
    _grant(platform, "sci", "study1")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems = watch_errors(page)
    page.goto(f"{url}/login")
    page.fill("#name", "sci")
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}/")
    page.goto(f"{url}/collections?name=study1.page")
    page.click("a:has-text('ct.dcm')")
    page.wait_for_url("**/collections/file?**")
    assert page.locator("h1 code").inner_text() == "ct.dcm"
    image_box = page.locator("figure.thumbnail img")
    image_box.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('figure.thumbnail img').naturalWidth > 0")
    assert page.evaluate("document.querySelector('figure.thumbnail img').naturalWidth") <= 128
    rows = page.locator(
        "table[aria-label='Attribute actions'], [aria-label='Attribute actions'] table tbody tr"
    )
    assert rows.count() > 20
    assert page.locator("text=PatientBirthDate").count() == 1
    assert "Canary" not in page.content()
    page.goto(f"{url}/collections/file?name=study1.page&path=us.dcm")
    assert page.locator("#no-thumbnail").is_visible() and page.locator("figure.thumbnail").count() == 0
    assert problems == [], problems
    context.close()
    with platform.db.session() as session:
        reads = session.scalars(select(FileRead).where(FileRead.via == "thumbnail")).all()
        assert [(r.user, r.path) for r in reads] == [("sci", "ct.dcm")]
