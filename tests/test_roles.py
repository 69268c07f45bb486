"""Answer roles: what a question wants, what type a text is, and when a candidate's type contradicts
the role; a question's kind follows from its role (issue 17 points 3 and 7)."""

import pytest

from assistant import roles
from assistant.policy import classify


@pytest.mark.parametrize(
    "question,kind",
    [
        ("Who signed the letter?", "person"),
        ("What is the name of the cashier?", "person"),
        ("Which newspaper's name is printed on the box?", "org"),
        ("What is the name of the shop?", "org"),
        ("In which city is the company located?", "place"),
        ("In what year was it founded?", "year"),
        ("What is the total amount?", "money"),
        ("How much change did the customer receive?", "money"),
        ("What is the invoice number?", "code"),
        ("What is the phone number?", "phone"),
        ("How many miles is it to Leeds?", "quantity"),
        ("How many tracks does it record?", "number"),
        ("What word is written on the wall?", "words"),
        ("What kind of service is the freephone for?", "phrase"),
    ],
)
def test_the_role_a_question_asks_for(question, kind):
    assert roles.role_of(question).kind == kind


def test_qualifiers_are_parsed_once():
    r = roles.role_of("What is written in small letters at the bottom left?", ink="red")
    assert set(r.where) == {"bottom", "left"} and r.size == "small" and r.ink == "red"
    assert roles.role_of("What is the heading of the page?").size == "large"


def test_a_candidate_whose_type_contradicts_the_role_is_named_so():
    name = roles.role_of("What is the name of the restaurant?")
    assert (
        roles.conflict(name, "www.example-blog.com")
        == "it is a web address, not the name of an organisation or shop"
    )
    assert roles.conflict(name, "12 Baker Street") != ""  # an address is not a shop's name
    assert roles.conflict(name, "Harbor Grill") == ""
    assert roles.conflict(roles.role_of("In which city is it located?"), "12 Baker Street, Leeds") == ""
    year = roles.role_of("In what year was it founded?")
    assert roles.conflict(year, "$12.50") != "" and roles.conflict(year, "Since 1998") == ""
    assert roles.conflict(roles.role_of("What e-mail address appears?"), "The quick brown fox") != ""


def test_types_of_a_text():
    assert {"url"} <= roles.types_of("www.example.com") and "name" not in roles.types_of("www.example.com")
    assert "address" in roles.types_of("221B Baker Street") and "name" in roles.types_of("Harbor Grill")
    assert {"money"} <= roles.types_of("TOTAL 12.50") and "year" in roles.types_of("Founded 1998")


def test_the_kind_follows_from_the_role_not_from_nouns():
    assert classify("How many miles is it to Leeds?").name == "read"
    assert classify("According to the list, how many litres of water are needed?").name == "read"
    assert classify("How many dogs are in the picture?").name == "count"
    assert classify("How much change was given?").name == "read"
    assert classify("In which city is Linn Electronics located?").name == "read"
    assert classify("Question number 3?").name == "other"
