"""The Airflow UI in Debian's Chromium, headless, driven with Selenium through Debian's
chromedriver: what the operator's journey test clicks. Every step can leave a screenshot."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Browser:
    def __init__(self, base_url: str, screenshots: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base_url = base_url.rstrip("/")
        self.screenshots = screenshots
        shutil.rmtree(screenshots, ignore_errors=True)
        screenshots.mkdir(parents=True)
        self.shots: list[Path] = []
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                         "--disable-gpu"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.implicitly_wait(0)

    def close(self) -> None:
        self.driver.quit()

    # -- looking
    def wait(self, what: str, probe, timeout: float = 30):
        """probe() until it returns something true (exceptions count as not yet)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = probe()
            except Exception:  # noqa: BLE001 - an element not rendered yet
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                self.shot(f"timeout-{len(self.shots) + 1:02d}")
                raise AssertionError(f"the UI did not show {what} in {timeout:.0f}s (see {self.shots[-1]})")
            time.sleep(0.3)

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").get_attribute("innerText")

    def wait_text(self, text: str, timeout: float = 30) -> None:
        self.wait(repr(text), lambda: text in self.text(), timeout)

    def css(self, selector: str, within=None) -> list:
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def button(self, label: str, within=None):
        """The visible button whose text or aria-label is `label`."""
        def find():
            for button in self.css("button", within):
                if label in (button.get_attribute("innerText").strip(), button.get_attribute("aria-label")) \
                        and button.is_displayed():
                    return button
            return None

        return self.wait(f"a button {label!r}", find)

    def dialog(self, title: str):
        return self.wait(f"the dialog {title!r}", lambda: next(
            (d for d in self.css("[role=dialog]") if title in d.get_attribute("innerText")), None))

    def shot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        return path

    # -- doing
    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def click(self, element, timeout: float = 15) -> None:
        """Click as a user does; while something lies over the element (a toast), wait for it
        to go."""
        from selenium.common.exceptions import ElementClickInterceptedException

        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        deadline = time.monotonic() + timeout
        while True:
            try:
                element.click()
                return
            except ElementClickInterceptedException:
                if time.monotonic() > deadline:
                    raise
                self.move_away()  # a toast stays while the pointer rests on it
                time.sleep(0.5)

    def move_away(self) -> None:
        """The pointer to the page's top left corner."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        body = self.driver.find_element(By.TAG_NAME, "body")
        size = body.size
        ActionChains(self.driver).move_to_element_with_offset(
            body, -size["width"] // 2 + 5, -size["height"] // 2 + 5).perform()

    def show(self, text: str) -> None:
        """Scroll the innermost element that holds `text` into view (for the screenshot)."""
        from selenium.webdriver.common.by import By

        element = self.wait(repr(text), lambda: self.driver.find_element(
            By.XPATH, f"//*[contains(., {text!r}) and not(*[contains(., {text!r})])]"))
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)

    def login(self, username: str, password: str) -> None:
        from selenium.webdriver.common.by import By

        self.open("/")
        user = self.wait("the login form", lambda: self.driver.find_element(By.NAME, "username"))
        user.send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.shot("01-login")
        self.click(self.driver.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]"))
        self.wait("the UI after logging in", lambda: "/auth/login" not in self.driver.current_url
                  and "Dags" in self.text())
