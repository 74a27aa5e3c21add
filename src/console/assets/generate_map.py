#!/usr/bin/env python3
"""Generates the console's embedded map of Japan (run once; the output is committed).

Inputs, both MIT-licensed, fetched from the registries by their ordinary clients:
  - npm `@react-map/japan` 1.0.10: an SVG path per prefecture (`src/constants.ts`);
  - PyPI `JpGeocode` 0.3.1: a point (lat, lng) per municipality, 1,741 of them,
    keyed by "prefecture,municipality" name (`JpGeocode/data/jp_geocode.json`).

Outputs, beside this script:
  - prefectures.tsv: JIS X 0401 code, SVG path (the package's coordinates);
  - municipality_points.tsv: prefecture code, municipality name, x, y in the same
    coordinates, placed by an affine fit of each prefecture's points onto its shape
    (Okinawa, drawn as an inset, gets a fit of its own).

No municipality boundaries are drawn: no package on the registries we reach carries
them in a form small enough to embed, so municipalities are points.

Usage:
  cd /tmp && npm pack @react-map/japan@1.0.10 && tar xzf react-map-japan-1.0.10.tgz
  pip download --no-deps JpGeocode==0.3.1 -d jg && (cd jg && unzip -o -q *.whl)
  python3 generate_map.py /tmp/package/src/constants.ts /tmp/jg/JpGeocode/data/jp_geocode.json
"""
import json
import re
import sys
from pathlib import Path

ROMAJI = [
    "Hokkaido", "Aomori", "Iwate", "Miyagi", "Akita", "Yamagata", "Fukushima",
    "Ibaraki", "Tochigi", "Gunma", "Saitama", "Chiba", "Tokyo", "Kanagawa",
    "Niigata", "Toyama", "Ishikawa", "Fukui", "Yamanashi", "Nagano", "Gifu",
    "Shizuoka", "Aichi", "Mie", "Shiga", "Kyoto", "Osaka", "Hyogo", "Nara",
    "Wakayama", "Tottori", "Shimane", "Okayama", "Hiroshima", "Yamaguchi",
    "Tokushima", "Kagawa", "Ehime", "Kochi", "Fukuoka", "Saga", "Nagasaki",
    "Kumamoto", "Oita", "Miyazaki", "Kagoshima", "Okinawa",
]
KANJI = [
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県",
    "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県",
    "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県",
    "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県",
    "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
]


def paths(constants: str) -> dict:
    out = {}
    for key, d in re.findall(r"^\s+'?([A-Za-z]+)[^:\n]*:\s*\n?\s*'([^']+)'", constants, re.M):
        if key in ROMAJI:
            out[ROMAJI.index(key) + 1] = d
    missing = set(range(1, 48)) - set(out)
    if missing:
        sys.exit(f"no shape for prefectures {sorted(missing)}")
    return out


def bbox(d: str):
    """The bounding box of a path of M/m/L/l/H/h/V/v/z commands (what the package uses)."""
    xs, ys, x, y, start = [], [], 0.0, 0.0, (0.0, 0.0)
    for cmd, args in re.findall(r"([MmLlHhVvZz])([^MmLlHhVvZz]*)", d):
        nums = [float(n) for n in re.findall(r"-?\d*\.?\d+(?:e-?\d+)?", args)]
        if cmd in "Zz":
            x, y = start
            continue
        if cmd in "Hh":
            for n in nums:
                x = x + n if cmd == "h" else n
                xs.append(x); ys.append(y)
            continue
        if cmd in "Vv":
            for n in nums:
                y = y + n if cmd == "v" else n
                xs.append(x); ys.append(y)
            continue
        for i in range(0, len(nums) - 1, 2):
            dx, dy = nums[i], nums[i + 1]
            if cmd.islower():
                x, y = x + dx, y + dy
            else:
                x, y = dx, dy
            if i == 0 and cmd in "Mm":
                start = (x, y)
            xs.append(x); ys.append(y)
    return min(xs), min(ys), max(xs), max(ys)


def fit(pairs):
    """Least squares v = a*u + b over (u, v) pairs."""
    n = len(pairs)
    su = sum(u for u, _ in pairs); sv = sum(v for _, v in pairs)
    suu = sum(u * u for u, _ in pairs); suv = sum(u * v for u, v in pairs)
    a = (n * suv - su * sv) / (n * suu - su * su)
    return a, (sv - a * su) / n


def main(constants_ts: str, geocode_json: str):
    shapes = paths(Path(constants_ts).read_text(encoding="utf-8"))
    points = json.loads(Path(geocode_json).read_text(encoding="utf-8"))
    by_pref = {}
    for key, p in points.items():
        pref, name = key.split(",", 1)
        by_pref.setdefault(KANJI.index(pref) + 1, []).append((name, p["lng"], p["lat"]))
    centres = {}
    for code, pts in by_pref.items():
        x0, y0, x1, y1 = bbox(shapes[code])
        lng = (min(p[1] for p in pts) + max(p[1] for p in pts)) / 2
        lat = (min(p[2] for p in pts) + max(p[2] for p in pts)) / 2
        centres[code] = ((x0 + x1) / 2, (y0 + y1) / 2, lng, lat)
    main_fit = [c for k, c in centres.items() if k != 47]
    fx = fit([(c[2], c[0]) for c in main_fit])
    fy = fit([(c[3], c[1]) for c in main_fit])
    # Okinawa is an inset: keep the scale, move it onto its own shape.
    ox, oy, olng, olat = centres[47]
    inset = ((fx[0], ox - fx[0] * olng), (fy[0], oy - fy[0] * olat))
    here = Path(__file__).parent
    with open(here / "prefectures.tsv", "w", encoding="utf-8") as f:
        for code in range(1, 48):
            f.write(f"{code:02}\t{shapes[code]}\n")
    with open(here / "municipality_points.tsv", "w", encoding="utf-8") as f:
        for code in sorted(by_pref):
            ax, ay = inset if code == 47 else (fx, fy)
            for name, lng, lat in by_pref[code]:
                x = ax[0] * lng + ax[1]
                y = ay[0] * lat + ay[1]
                f.write(f"{code:02}\t{name}\t{x:.1f}\t{y:.1f}\n")
    x0 = min(bbox(d)[0] for d in shapes.values()); y0 = min(bbox(d)[1] for d in shapes.values())
    x1 = max(bbox(d)[2] for d in shapes.values()); y1 = max(bbox(d)[3] for d in shapes.values())
    print(f"viewBox {x0:.1f} {y0:.1f} {x1 - x0:.1f} {y1 - y0:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
