"""The table of setup's questions: each verbatim prompt maps to the right answer."""
from __future__ import annotations

import pytest

from smartos_lab.errors import SetupError
from smartos_lab.smartos.answers import SetupAnswers
from smartos_lab.smartos.prompts import PROMPTS, PromptDriver, prompt_for_key, typed_answer

# Prompts as smartos_prompt_config.sh (smartos-live @ 059ec27268b3) prints them on a first
# boot: its own variables are empty then, so promptval/promptnet show a default only where
# the script passes a literal one.  Later rounds (after answering "n" at the final
# confirmation) show the earlier answers as defaults.
VERBATIM = {
    "continue": ["Press [enter] to continue", "\nPress [enter] to continue "],
    "admin_nic_number": ["Enter the number of the NIC for the 'admin' interface: "],
    "admin_ip": ["(admin) IP address (or dhcp): ", "(admin) IP address (or dhcp) [dhcp]: "],
    "admin_netmask": ["(admin) netmask [255.255.255.0]: "],
    "headnode_default_gateway": ["Enter the default gateway IP [none]: "],
    "dns_resolver1": ["Enter the Primary DNS server IP [8.8.8.8]: "],
    "dns_resolver2": ["Enter the Secondary DNS server IP [8.8.4.4]: "],
    "dns_search": ["Default DNS search domain: ", "Default DNS search domain [lab.internal]: "],
    "ntp_host": ["Enter an NTP server IP address or hostname [0.smartos.pool.ntp.org]: "],
    "zpool_confirm_layout": ["Selected zpool layout [yes]: "],
    "bootpool": ["Specify a (configured) zpool from which to boot [none]: "],
    "pisource": ["Source for SmartOS to install [media]: "],
    "install_pkgsrc": ["Install pkgsrc? [y]: "],
    "root_password": ["Enter root password: ", "Enter root password [enter to keep existing]: "],
    "confirm_password": ["Confirm password: "],
    "hostname": ["Enter system hostname [press enter for none]: ", "Enter system hostname [lab1]: "],
    "final_confirm": ["Is this correct, proceed with installation? [y]: "],
    "reboot": ["System setup has completed.\n\nPress enter to reboot.\r\n"],
}

ANSWERS = SetupAnswers(root_password="pw-1234567890", hostname="lab1")


def matching(text: str) -> list[str]:
    return [p.key for p in PROMPTS if p.regex.search(text)]


@pytest.mark.parametrize("key,text", [(k, t) for k, texts in VERBATIM.items() for t in texts])
def test_each_verbatim_prompt_matches_exactly_its_own_entry(key, text):
    assert matching(text) == [key]


def test_every_prompt_of_the_table_is_covered_by_a_verbatim_example():
    assert {p.key for p in PROMPTS} == set(VERBATIM)


def test_setup_text_that_is_not_a_question_matches_nothing():
    for text in ["> Networking - Admin\n", "Checking connectivity...UNREACHABLE\n",
                 "Creating pool zones...                                  done\n",
                 "Hostname: lab1\n", "NTP server: 0.smartos.pool.ntp.org\n",
                 "SunOS Release 5.11 Version joyent_20250724T001011Z 64-bit\n"]:
        assert matching(text) == []


@pytest.mark.parametrize("key,typed", [
    ("continue", ""), ("reboot", ""), ("admin_ip", "dhcp"), ("headnode_default_gateway", "none"),
    ("dns_resolver1", "10.0.2.3"), ("dns_search", "lab.internal"), ("zpool_confirm_layout", "yes"),
    ("bootpool", "none"), ("install_pkgsrc", "no"), ("root_password", "pw-1234567890"),
    ("confirm_password", "pw-1234567890"), ("hostname", "lab1"), ("final_confirm", "y"),
    ("admin_netmask", ""), ("pisource", "media"),
])
def test_answers_come_from_setup_answers(key, typed):
    assert typed_answer(prompt_for_key(key), ANSWERS) == typed


def test_passwords_are_marked_secret():
    assert {p.key for p in PROMPTS if p.secret} == {"root_password", "confirm_password"}


NIC_TABLE = ("Number Link      MAC Address        State   Network   \n"
             "1      e1000g0   52:54:00:12:34:56  up      -         \n"
             "2      e1000g1   52:54:00:12:34:57  up      -         \n")


def test_nic_prompt_is_answered_with_the_row_of_the_admin_mac():
    prompt = prompt_for_key("admin_nic_number")
    a = SetupAnswers(root_password="pw-1234567890", admin_nic="52:54:0:12:34:57")
    assert typed_answer(prompt, a, NIC_TABLE) == "2"
    assert typed_answer(prompt, ANSWERS, NIC_TABLE) == "1"
    with pytest.raises(SetupError, match="52:54:00:aa:bb:cc"):
        typed_answer(prompt, SetupAnswers(root_password="pw-1234567890",
                                          admin_nic="52:54:00:aa:bb:cc"), NIC_TABLE)


class FakeConsole:
    def __init__(self):
        self.lines = []

    def sendline(self, line):
        self.lines.append(line)


def test_driver_types_answers_after_a_pause_and_masks_secrets():
    console, seen = FakeConsole(), []
    driver = PromptDriver(ANSWERS, answer_delay=0.0, on_answer=lambda p, s: seen.append((p.key, s)))
    driver.answer(console, prompt_for_key("admin_ip"))
    driver.answer(console, prompt_for_key("root_password"))
    assert console.lines == ["dhcp", "pw-1234567890"]
    assert seen == [("admin_ip", "dhcp"), ("root_password", "****")]
    assert driver.answered == seen
