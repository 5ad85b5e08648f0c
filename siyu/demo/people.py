"""The latent people of the demo brand: who they are, how they joined, how long they stay.

This is the ground truth the events are drawn from. It is also written out (``demo_people``)
so that tests and the identity module can check their results against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from faker.providers.person.zh_CN import Provider as ChinesePerson

from siyu.demo import reference as ref
from siyu.demo.frames import BoolArray, FloatArray, IntArray, digits, join, pick, take, tokens

_SURNAMES = list(ChinesePerson.last_names.keys())
_SURNAME_WEIGHTS = np.array(list(ChinesePerson.last_names.values()), dtype=float)
_FEMALE_NAMES = list(ChinesePerson.first_names_female)
_MALE_NAMES = list(ChinesePerson.first_names_male)
_PHONE_PREFIXES = np.array(
    [130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157, 158, 159,
     166, 170, 175, 176, 177, 180, 181, 182, 183, 185, 186, 187, 188, 189, 191, 198, 199]
)  # fmt: skip
_EMAIL_DOMAINS = (
    "qq.com",
    "163.com",
    "126.com",
    "foxmail.com",
    "gmail.com",
    "outlook.com",
    "sina.com",
)
_EMAIL_WEIGHTS = np.array([0.45, 0.22, 0.08, 0.07, 0.06, 0.07, 0.05])
# A bijection on [0, 10^9) and on [0, 34·10^8): unique member numbers and phones per person.
_MEMBER_MULT, _PHONE_MULT = 387_420_489, 2_654_435_761

# Account ownership: P(has account | registration channel), columns follow REGISTRATION_CHANNELS.
_HAS_MP = np.array([0.70, 1.0, 1.0, 0.40, 1.0])
_HAS_WECOM = np.array([1.0, 0.25, 0.20, 0.35, 0.20])
_HAS_POS = np.array([0.25, 0.15, 0.05, 1.0, 0.10])
_HAS_WEB = np.array([0.10, 0.10, 0.15, 0.08, 0.10])
_CONVERSION = np.array([0.98, 0.90, 0.75, 1.0, 0.85])  # P(ever orders | customer type)


@dataclass
class People:
    """One chunk of people as columns; ``index`` is the global person number."""

    index: IntArray
    gender: IntArray  # 0 female, 1 male
    birthday: IntArray  # days since 1970-01-01
    city: IntArray
    registration: IntArray  # index into REGISTRATION_CHANNELS
    ctype: IntArray  # index into CUSTOMER_TYPES
    main_category: IntArray
    second_category: IntArray  # -1 when none
    reg_day: FloatArray  # days since window start (negative: joined before the window)
    end1: FloatArray  # end of the first active spell
    start2: FloatArray  # start of the spell after a return (inf: never returned)
    end2: FloatArray
    converts: BoolArray
    has_wechat: BoolArray
    has_mp: BoolArray
    has_wecom: BoolArray
    has_pos: BoolArray
    has_web: BoolArray
    has_email: BoolArray
    phone_authorised: BoolArray  # shared the phone number with the mini-program
    kiosk: IntArray  # store kiosk device used to log in once, -1 for none
    # identifiers (Arrow strings)
    name: pa.Array
    phone: pa.Array
    member_no: pa.Array
    openid: pa.Array
    unionid: pa.Array
    wecom_id: pa.Array
    email: pa.Array
    device: pa.Array

    def __len__(self) -> int:
        return len(self.index)

    def active(self, day: float) -> BoolArray:
        """Whether each person is in an active spell on ``day``."""
        return self.active_rows(np.arange(len(self)), np.full(len(self), day))

    def active_rows(self, pid: IntArray, day: FloatArray) -> BoolArray:
        """Whether person ``pid[i]`` is in an active spell on ``day[i]``."""
        first = (day >= np.maximum(self.reg_day[pid], 0)) & (day < self.end1[pid])
        return first | ((day >= self.start2[pid]) & (day < self.end2[pid]))


def make_people(
    rng: np.random.Generator, first_index: int, n: int, days: int, start_date_ordinal: int
) -> People:
    index = np.arange(first_index, first_index + n, dtype=np.int64)
    gender = (rng.random(n) < 0.22).astype(np.int64)
    band = np.searchsorted(np.cumsum([0.22, 0.30, 0.30, 0.18]), rng.random(n), side="right")
    low, width = np.array([18, 25, 31, 41]), np.array([7, 6, 10, 20])
    age = low[band] + rng.integers(0, 1 << 30, n) % width[band]
    start_epoch_day = start_date_ordinal - 719_163  # date.toordinal(1970-01-01)
    birthday = start_epoch_day - (age * 365.25 + rng.integers(0, 365, n)).astype(np.int64)
    city = pick(rng, np.array([c[3] for c in ref.CITIES]), n)
    registration = pick(rng, ref.REGISTRATION_WEIGHTS, n)
    ctype = pick(rng, ref.CUSTOMER_TYPE_WEIGHTS, n)
    main_category = pick(rng, ref.CATEGORY_WEIGHTS, n)
    second = pick(rng, ref.CATEGORY_WEIGHTS, n)
    second_category = np.where((rng.random(n) < 0.45) & (second != main_category), second, -1)

    reg_day = _registration_days(rng, n, days)
    lifetime = rng.exponential(ref.MEAN_LIFETIME_DAYS[ctype])
    end1 = np.maximum(reg_day, 0) + lifetime
    end1 = np.where(reg_day < 0, reg_day + lifetime, end1)
    returns = (end1 < days - 120) & (rng.random(n) < 0.45)
    start2 = np.where(returns, np.maximum(end1, 0) + 90 + rng.exponential(70, n), np.inf)
    start2 = np.where(start2 < days, start2, np.inf)
    end2 = np.where(
        np.isfinite(start2), start2 + rng.exponential(ref.MEAN_LIFETIME_DAYS[ctype]), np.inf
    )
    end2 = np.where(np.isfinite(start2), end2, np.inf)

    wechat_registration = np.isin(registration, [0, 1, 2, 4])  # every channel but the store till
    has_wechat = (rng.random(n) < 0.93) | wechat_registration
    has_mp = ((rng.random(n) < _HAS_MP[registration]) & has_wechat) | np.isin(
        registration, [1, 2, 4]
    )
    has_wecom = ((rng.random(n) < _HAS_WECOM[registration]) & has_wechat) | (registration == 0)
    has_pos = (rng.random(n) < _HAS_POS[registration]) | (registration == 3)
    has_web = (rng.random(n) < _HAS_WEB[registration]) | ~(has_mp | has_pos | has_wecom)
    has_email = rng.random(n) < 0.22
    phone_authorised = has_mp & (rng.random(n) < 0.65)
    kiosks = max(1, n // 2500)  # a handful of store kiosks, each used by many members
    kiosk = np.where(has_pos & (rng.random(n) < 0.03), rng.integers(0, kiosks, n), -1)

    return People(
        index=index,
        gender=gender,
        birthday=birthday,
        city=city,
        registration=registration,
        ctype=ctype,
        main_category=main_category,
        second_category=second_category,
        reg_day=reg_day,
        end1=end1,
        start2=start2,
        end2=end2,
        converts=rng.random(n) < _CONVERSION[ctype],
        has_wechat=has_wechat,
        has_mp=has_mp,
        has_wecom=has_wecom,
        has_pos=has_pos,
        has_web=has_web,
        has_email=has_email,
        phone_authorised=phone_authorised,
        kiosk=kiosk,
        name=_names(rng, gender),
        phone=_phones(index),
        member_no=join("M", digits((index * _MEMBER_MULT + 12_345) % 1_000_000_000, 9)),
        openid=tokens(rng, n, 26, "oX"),
        unionid=tokens(rng, n, 26, "o6_"),
        wecom_id=tokens(rng, n, 30, "wm"),
        email=_emails(rng, n),
        device=_device_ids(rng, n),
    )


def _registration_days(rng: np.random.Generator, n: int, days: int) -> FloatArray:
    """35% joined in the two years before the window; the rest during it, growing over time."""
    before = rng.random(n) < 0.35
    growth = days * np.sqrt(rng.random(n))  # density rising linearly through the window
    return np.where(before, -rng.uniform(1, 730, n), growth)


def _names(rng: np.random.Generator, gender: IntArray) -> pa.Array:
    n = len(gender)
    surname = take(pa.array(_SURNAMES), pick(rng, _SURNAME_WEIGHTS, n))
    female = take(pa.array(_FEMALE_NAMES), rng.integers(0, len(_FEMALE_NAMES), n))
    male = take(pa.array(_MALE_NAMES), rng.integers(0, len(_MALE_NAMES), n))
    given = pa.array(
        np.where(
            gender == 1, male.to_numpy(zero_copy_only=False), female.to_numpy(zero_copy_only=False)
        )
    )
    return join(surname, given)


def _phones(index: IntArray) -> pa.Array:
    """Unique mainland mobile numbers, 11 digits, derived from the person number."""
    mixed = (index * _PHONE_MULT + 7_654_321) % (len(_PHONE_PREFIXES) * 100_000_000)
    prefix = _PHONE_PREFIXES[mixed // 100_000_000]
    return join(pa.array(prefix).cast(pa.string()), digits(mixed % 100_000_000, 8))


def _emails(rng: np.random.Generator, n: int) -> pa.Array:
    domain = take(pa.array(_EMAIL_DOMAINS), pick(rng, _EMAIL_WEIGHTS, n))
    qq_number = pa.array(rng.integers(100_000_000, 3_999_999_999, n)).cast(pa.string())
    letters = tokens(rng, n, 7, "", alphabet="hex")
    local = pa.array(
        np.where(
            np.asarray(domain.to_numpy(zero_copy_only=False)) == "qq.com",
            qq_number.to_numpy(zero_copy_only=False),
            join("yy", letters).to_numpy(zero_copy_only=False),
        )
    )
    return join(local, "@", domain)


def _device_ids(rng: np.random.Generator, n: int) -> pa.Array:
    raw = tokens(rng, n, 32, "", alphabet="hex")
    parts = [
        pa.compute.utf8_slice_codeunits(raw, a, b)
        for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
    ]
    return join(parts[0], "-", parts[1], "-", parts[2], "-", parts[3], "-", parts[4])
