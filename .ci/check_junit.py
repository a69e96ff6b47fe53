"""Fail unless the JUnit report has no skipped test and at least N real-data tests passed."""

import sys
import xml.etree.ElementTree as ET

report, expected_realdata = sys.argv[1], int(sys.argv[2])
cases = list(ET.parse(report).getroot().iter("testcase"))
skipped = [c for c in cases if c.find("skipped") is not None]
failed = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
if skipped or failed or expected_realdata == 0:
    for c in skipped:
        print(f"CI: skipped {c.get('classname')}::{c.get('name')}: {c.find('skipped').get('message')}")
    print(f"CI: {len(cases)} tests, {len(failed)} failed, {len(skipped)} skipped, "
          f"{expected_realdata} real-data tests collected")
    sys.exit(1)
print(f"CI: {len(cases)} tests passed, including {expected_realdata} real-data tests")
