"""Choosing the text a question means from full-recall OCR evidence: signs, typed values at their labels,
receipts (totals under their many names, however far right), several images, and readings of one region
reconciled (issue 12 item 6). Pure functions over hand-made evidence, so each rule is seen alone."""

from assistant.extract import find_field, item_price, read_text, receipt_total
from assistant.policy import Intent
from assistant.reading import text_lines
from tests.fixtures.answers import unanswered
from tools.evidence import Evidence

_n = iter(range(1, 10_000))


def line(text, box, conf=0.95, image="im", tool="ocr"):
    return Evidence(f"{tool}:{next(_n)}", tool, image, "line", text, conf, tuple(float(v) for v in box))


def test_sign_text_is_the_large_central_text_not_a_url_at_the_edge():
    ev = [
        line("BEWARE OF", (200, 200, 600, 260)),
        line("MOVING VEHICLES", (150, 280, 650, 340)),
        line("www.someblog.example.com", (600, 760, 790, 780), conf=0.97),
        line("(c) photo", (10, 770, 80, 790), conf=0.9),
    ]
    ex = read_text(ev, "What does the sign say?")
    assert ex.key == "BEWARE OF MOVING VEHICLES"  # both lines, in reading order, nothing from the edges


def test_position_and_size_words_narrow_the_text():
    ev = [
        line("10", (300, 50, 380, 150)),
        line("Genexis Theatre", (200, 300, 500, 340)),
        line("Carpark", (240, 600, 420, 640)),
    ]
    assert read_text(ev, "What number is shown in large digits at the top?").key == "10"
    assert read_text(ev, "What is written on the bar at the bottom of the sign?").key == "Carpark"
    assert read_text(ev, "Which theatre is listed on the sign?").key == "Genexis Theatre"


def test_typed_values_are_found_at_their_labels():
    ev = [
        line("SYL ROASTED DELIGHTS", (100, 20, 500, 60)),
        line("Table: A10", (40, 120, 200, 140)),
        line("Pax: 2", (300, 120, 380, 140)),
        line("Date: 27/03/2018", (40, 160, 260, 180)),
        line("Contact us: info@syl.example.com", (40, 200, 400, 220)),
        line("Tel 03-2093 7358", (40, 240, 260, 260)),
        line("TOTAL 54.50", (40, 400, 300, 420)),
    ]
    assert read_text(ev, "What table number is printed on the receipt?").key == "A10"
    assert read_text(ev, "What date is printed on the invoice?").key == "27/03/2018"
    assert read_text(ev, "What e-mail address appears in the text?").key == "info@syl.example.com"
    assert find_field(ev, "phone", "What is the store's telephone number?").key == "03-2093 7358"
    assert read_text(ev, "What is the name of the restaurant on the receipt?").key == "SYL ROASTED DELIGHTS"


def test_a_value_under_its_label_and_a_name_the_question_already_knows():
    ev = [
        line("FLIGHT", (60, 100, 160, 130)),
        line("GATE", (400, 100, 480, 130)),
        line("MU 2379", (60, 140, 180, 170)),
        line("G11", (400, 140, 450, 170)),
    ]
    assert read_text(ev, "What is the flight number on the boarding pass?").key == "MU 2379"
    sign = [
        line("EPPING", (80, 120, 240, 160)),
        line("Twinned with", (100, 184, 236, 205)),
        line("Eppingen, Germany", (70, 206, 262, 229)),
    ]
    assert "Eppingen" in read_text(sign, "According to the sign, which town is Epping twinned with?").key


def test_unanswerable_reading_questions_have_no_extract():
    receipt = [
        line("THREE STOOGES", (100, 20, 400, 60)),
        line("Invoice No 00012916", (40, 100, 300, 120)),
        line("NET TOTAL 343.95", (40, 400, 300, 420)),
    ]
    assert unanswered(read_text(receipt, "What is the name of the cashier who served this customer?"))
    assert unanswered(
        find_field(receipt, "phone", "What is the restaurant's telephone number?")
    )  # an invoice no. is not one
    assert unanswered(
        read_text(receipt, "What fare was paid for this ticket?")
    )  # no fare, and 343.95 is no fare
    assert unanswered(read_text(receipt, "On what date was this text written?"))
    assert item_price(receipt, "banana") is None
    assert unanswered(read_text([line("SURF SHOP", (10, 10, 200, 40))], "What is the name of this beach?"))


def test_total_far_right_on_its_row_or_on_the_next_line():
    ev = [
        line("TEA", (20, 100, 70, 120)),
        line("1.80", (600, 101, 650, 121)),
        line("TOTAL", (20, 200, 90, 222)),
        line("8.85", (600, 198, 650, 220)),
    ]
    ex = receipt_total(ev)
    assert ex.key == "8.85" and ex.ids == [ev[2].id, ev[3].id]
    assert item_price(ev, "tea").key == "1.80"
    below = [line("Total Due", (20, 200, 140, 222)), line("RM 86,00", (20, 230, 140, 252))]
    assert receipt_total(below).key == "86.00"


def test_the_total_among_subtotal_tax_rounding_and_the_name_the_question_uses():
    ev = [
        line("Sub Total 50.00", (20, 100, 300, 120)),
        line("GST 6% 3.00", (20, 130, 300, 150)),
        line("Rounding 0.02", (20, 160, 300, 180)),
        line("Total (incl. GST) $53.00", (20, 190, 300, 210)),
        line("CASH 100.00", (20, 220, 300, 240)),
    ]
    assert receipt_total(ev).key == "53.00"
    net = [line("GRAND TOTAL 400.00", (20, 100, 300, 120)), line("NET TOTAL 343.95", (20, 130, 300, 150))]
    assert receipt_total(net, "What is the net total on the bill?").key == "343.95"
    assert receipt_total([line("Amount payable 1.234,50", (20, 100, 300, 120))]).key == "1234.50"


def test_readings_of_one_region_are_reconciled_not_won_by_the_last_tool():
    # A 10000x20 strip: OCR read it right, the zoomed re-read lost letters; the fuller reading stands.
    ocr = line("WIDE STRIP TEXT", (100, 2, 9800, 18), conf=0.86)
    zoom = line("IDE TEXT", (120, 1, 9790, 19), conf=0.9, tool="zoom")
    assert [e.text for e in text_lines([ocr, zoom])] == ["WIDE STRIP TEXT"]
    # Where neither contains the other, the more confident reading stands, whichever tool gave it.
    a, b = line("0PFN", (10, 10, 100, 40), conf=0.6), line("OPEN", (12, 9, 98, 41), conf=0.93, tool="zoom")
    assert [e.text for e in text_lines([b, a])] == ["OPEN"] == [e.text for e in text_lines([a, b])]


def test_intent_detail_reaches_the_reader():
    from assistant.extract import extract

    ev = [line("CAUTION", (10, 10, 200, 50)), line("Mind the gap", (10, 300, 200, 320))]
    assert extract(Intent("read"), "What word is printed at the top of the sign?", ev, {}).key == "CAUTION"


def test_a_field_named_in_capitals_is_read_under_its_header():
    def word(text, x0, x1, y0, y1):
        return Evidence(f"ocr:{next(_n)}", "ocr", "im", "word", text, 0.95, (x0, y0, x1, y1))

    header = line("目的地 TO FROM GATE", (60, 170, 620, 200))
    values = line("FUZHOU TAIYUAN G11", (90, 210, 560, 245))
    ev = [header, values, word("目的地", 60, 110, 172, 198), word("TO", 115, 140, 172, 198),
          word("FROM", 300, 360, 172, 198), word("GATE", 520, 580, 172, 198),
          word("FUZHOU", 90, 190, 212, 243), word("TAIYUAN", 290, 400, 212, 243), word("G11", 520, 560, 212, 243)]  # fmt: skip
    assert read_text(ev, "What is the destination city (the TO field)?").key == "FUZHOU"
    assert read_text(ev, "What is the GATE?").key == "G11"


def test_what_was_paid_and_misread_labels_do_not_make_a_total():
    ev = [
        line("Total Amt Incl GST 7950", (128, 532, 498, 560)),
        line("Rounding Adjustment", (178, 568, 360, 587)),
        line("Total Amt Payabie 79.50", (199, 602, 497, 619)),
        line("Paid Amount 100.00", (252, 633, 497, 650)),
        line("Change 20.50", (291, 667, 498, 686)),
    ]
    assert receipt_total(ev, "What is the total amount payable?").key == "79.50"
    assert receipt_total(ev).key == "79.50"


def test_a_shop_name_is_the_heading_not_the_address_under_it():
    ev = [
        line("THREE STOOGES", (91, 177, 369, 197)),
        line("BISTRO CAFE", (173, 205, 323, 225)),
        line("109 SS21/1A", (176, 233, 321, 256)),
        line("DAMANSARA UTAMA", (161, 261, 336, 282)),
        line("NET TOTAL 343.95", (52, 820, 493, 859)),
    ]
    assert read_text(ev, "What is the name of the bistro?").key == "THREE STOOGES BISTRO CAFE"


def test_a_serial_number_is_not_read_as_a_short_code():
    ev = [line("Z57A001950 HANGZHOU", (75, 101, 508, 130)), line("G7512", (200, 178, 300, 213))]
    assert read_text(ev, "What is the train number?").key == "G7512"
    ev = [line("9004-1300-5707- 08 A0-0", (61, 362, 515, 390)), line("HANGZHOU", (80, 215, 528, 242)),
          line("HANGZHOU DONG", (80, 245, 528, 270)), line("SHANGHAI", (80, 275, 528, 300)),
          line("Canon PowerShot A3400 1S F2.8", (16, 495, 203, 504), conf=0.76)]  # fmt: skip
    assert unanswered(read_text(ev, "What is the train number?"))  # not the camera's stamp in the corner


def test_a_price_marked_by_its_currency_word_and_no_bare_serial_as_code():
    ev = [line("杭州东 上海虹桥", (97, 178, 521, 213)), line("73.00元", (99, 248, 178, 264))]
    assert read_text(ev, "What is the price printed on the train ticket?").key == "73.00元"
    assert unanswered(read_text([line("A0-0 195-0", (61, 362, 515, 390))], "What is the train number?"))


def test_an_item_price_on_a_two_column_receipt_line():
    ev = [
        line("Salad bowl 12.34 Croissant 1.14", (30, 133, 869, 151)),
        line("TOTAL 74.22", (32, 186, 870, 202)),
    ]
    assert item_price(ev, "salad bowl").key == "12.34"
    assert item_price(ev, "croissant").key == "1.14"


def test_a_name_question_is_not_answered_with_a_direction_line():
    # A platform sign says where trains go ("to Harbourfront") beside the station's own name; the name is
    # the line that is not a direction, and with only a direction read there is no name to give.
    q = "What is the name of the station shown on the platform sign?"
    ev = [line("to Harbourfront", (260, 140, 480, 160), conf=0.97), line("Buona Vista", (200, 60, 520, 110))]
    assert read_text(ev, q).key == "Buona Vista"
    assert unanswered(read_text([line("towards Joo Koon", (260, 140, 480, 160))], q))
    assert read_text([line("to Harbourfront", (260, 140, 480, 160))], "What does the sign say?").key == (
        "to Harbourfront"
    )
    # A title that begins with "To" is still the book's name when nothing else is written.
    assert read_text([line("To Kill a Mockingbird", (50, 50, 400, 90))], "What name is written on the cover?")


def test_a_licence_plate_is_the_whole_plate_not_its_digits_and_not_abstained():
    ev = [
        line("TOYOTA", (100, 20, 300, 60)),
        line("KA 05 MH 2031", (100, 100, 300, 140)),
        line("Sale 50% off", (100, 200, 300, 240)),
    ]
    for q in [
        "What is the license plate number?",
        "What does the number plate say?",
        "What is the car's registration?",
    ]:
        assert read_text(ev, q).key == "KA 05 MH 2031", q
    assert unanswered(read_text([ev[0], ev[2]], "What is the licence plate number?"))  # no plate was read


def test_a_labelled_number_on_a_receipt_is_read_at_its_label():
    ev = [
        line("THREE STOOGES BISTRO", (100, 20, 500, 60)),
        line("GST ID 001661886464", (100, 80, 400, 100)),
        line("TABLE BAR 7", (100, 110, 300, 130)),
        line("Tax Invoice", (150, 150, 350, 170)),
        line("Invoice No 60000053668", (100, 180, 400, 200)),
        line("RM 86.00", (300, 400, 400, 420)),
    ]
    # the label's own line holds the value: not the line under it, even for a label in capitals
    assert "001661886464" in read_text(ev, "What is the GST ID?").key
    # a document's number may be digits alone after its label; the header "Tax Invoice" is not it
    assert read_text(ev, "What is the invoice number?").key == "60000053668"
    # the type's own form first: a flight number keeps its airline letters
    flight = [line("FLIGHT", (60, 100, 160, 130)), line("MU 2379", (60, 140, 180, 170))]
    assert read_text(flight, "What is the flight number?").key == "MU 2379"


def test_where_a_sign_is_comes_from_where_its_text_was_read():
    from assistant.answer import compose_answer
    from assistant.policy import classify, plan

    ev = [line("EXIT", (1000, 40, 1100, 80)), line("Platform 2", (100, 600, 300, 640))]
    q = "Is the exit sign on the left or the right side of the picture?"
    intent = classify(q)
    assert (intent.name, intent.target) == ("where", "exit sign")
    assert [c.tool for c in plan(intent, [1], {"ocr", "detect"})] == ["ocr"]  # OCR finds a sign, not YOLO
    c = compose_answer(q, intent, ev, "", sizes={"im": (1200, 700)}, image_order=["im"])
    assert c.answer == f'The exit sign ("EXIT") is at the top right of the image [{ev[0].id}].'
    c = compose_answer("Where is the parking sign?", classify("Where is the parking sign?"), ev, "",
                       sizes={"im": (1200, 700)}, image_order=["im"])  # fmt: skip
    assert c.abstained and "detector" not in c.answer  # no such text was read; no detector is blamed
    assert (
        classify("Where is the stop sign?").target == "stop sign"
        and plan(classify("Where is the stop sign?"), [1], {"ocr", "detect"})[0].tool == "detect"
    )  # a class COCO detectors know stays the detector's
