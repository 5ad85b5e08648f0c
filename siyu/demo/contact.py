"""How people join and are reached: registration, the identify calls of each channel account
(mini-program, WeCom contact, store membership, web login, CRM email, store kiosk), WeCom
groups, and the brand's campaigns over WeCom, SMS and email with their deliveries, opens,
clicks, unsubscribes and complaints."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo import reference as ref
from siyu.demo.frames import (
    KEY_EMAIL,
    KEY_MEMBER,
    KEY_OPENID,
    KEY_PHONE,
    KEY_WECOM,
    BoolArray,
    FloatArray,
    Fragment,
    IntArray,
    digits,
    join,
    json_object,
    rank_within,
    take,
    time_of_day,
)
from siyu.demo.people import People
from siyu.demo.shopping import Calendar

_GENDER = pa.array(["female", "male"])
_CITY = pa.array([c[0] for c in ref.CITIES])
_REG_CHANNEL = pa.array(list(ref.REGISTRATION_CHANNELS))
_REG_EVENT_CHANNEL = np.array(["wecom", "miniprogram", "miniprogram", "store", "miniprogram"])
_REG_KEY = np.array([KEY_WECOM, KEY_OPENID, KEY_OPENID, KEY_MEMBER, KEY_OPENID])
_REG_SCENE = pa.array(["qr_code", "1089", "1177", None, "1007"])
HISTORY_DAYS = 730  # registrations reach this far back before the window


def account_days(rng: np.random.Generator, people: People, days: int) -> dict[str, FloatArray]:
    """When each account was opened (inf: never). The registration channel's account opens at
    registration; the others follow while the person is active, or never."""
    n = len(people)
    later = np.maximum(people.reg_day, -HISTORY_DAYS) + rng.exponential(90.0, (5, n))
    reg = people.registration
    out = {}
    for row, (name, has, own) in enumerate(
        (
            ("mp", people.has_mp, np.isin(reg, [1, 2, 4])),
            ("wecom", people.has_wecom, reg == 0),
            ("pos", people.has_pos, reg == 3),
            ("web", people.has_web, np.zeros(n, bool)),
            ("email", people.has_email, np.zeros(n, bool)),
        )
    ):
        day = np.where(own, np.maximum(people.reg_day, -HISTORY_DAYS), later[row])
        alive = own | (day < np.where(np.isfinite(people.end2), people.end2, people.end1))
        out[name] = np.where(has & alive & (day < days), day, np.inf)
    return out


def _phone_plus86(people: People, pid: IntArray) -> pa.Array:
    return join("+86", take(people.phone, pid))


def _phone_dashed(people: People, pid: IntArray) -> pa.Array:
    phone = take(people.phone, pid)
    return join(
        pc.utf8_slice_codeunits(phone, 0, 3),
        "-",
        pc.utf8_slice_codeunits(phone, 3, 7),
        "-",
        pc.utf8_slice_codeunits(phone, 7, 11),
    )


def _birthday(people: People, pid: IntArray) -> pa.Array:
    return pa.array(people.birthday[pid].astype("datetime64[D]")).cast(pa.string())


def _where(mask: BoolArray, yes: pa.Array, no: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), yes, no)


def identity_events(
    rng: np.random.Generator, people: People, cal: Calendar, opened: dict[str, FloatArray]
) -> list[Fragment]:
    n = len(people)
    fragments = []
    everyone = np.arange(n)
    reg = people.registration
    reg_day = time_of_day(rng, np.maximum(people.reg_day, -HISTORY_DAYS))
    referral_props = _referrals(rng, people, reg_day)
    fragments.append(
        Fragment(
            everyone,
            reg_day,
            "register",
            pa.array(_REG_EVENT_CHANNEL[reg]),
            _REG_KEY[reg],
            {
                "properties": referral_props,
                "scene": take(_REG_SCENE, reg),
                "source": take(_REG_CHANNEL, reg),
            },
        )
    )

    mp = np.flatnonzero(np.isfinite(opened["mp"]))
    t = time_of_day(rng, opened["mp"][mp]) + np.where(reg[mp] != 3, 1 / 86400, 0)
    openid, unionid = take(people.openid, mp), take(people.unionid, mp)
    ids = _where(
        people.phone_authorised[mp],
        json_object(openid=openid, unionid=unionid, phone=_phone_plus86(people, mp)),
        json_object(openid=openid, unionid=unionid),
    )
    traits = json_object(gender=take(_GENDER, people.gender[mp]), city=take(_CITY, people.city[mp]))
    fragments.append(
        Fragment(
            mp, t, "identify", "miniprogram", KEY_OPENID, {"identifiers": ids, "properties": traits}
        )
    )

    wecom = np.flatnonzero(np.isfinite(opened["wecom"]))
    t = time_of_day(rng, opened["wecom"][wecom])
    staff = rng.integers(1, 120, len(wecom))
    ids = json_object(
        wecom_external_userid=take(people.wecom_id, wecom), unionid=take(people.unionid, wecom)
    )
    props = json_object(
        staff_id=join("S", digits(staff, 3)), store_id=join("ST", digits(staff // 3, 3))
    )
    fragments.append(
        Fragment(
            wecom,
            t,
            "wecom_add_contact",
            "wecom",
            KEY_WECOM,
            {"identifiers": ids, "properties": props, "scene": pa.array(["qr_code"] * len(wecom))},
        )
    )
    fragments.extend(_wecom_groups(rng, people, cal, wecom, t))

    pos = np.flatnonzero(np.isfinite(opened["pos"]))
    t = time_of_day(rng, opened["pos"][pos])
    ids = json_object(member_no=take(people.member_no, pos), phone=take(people.phone, pos))
    traits = json_object(
        name=take(people.name, pos),
        birthday=_birthday(people, pos),
        gender=take(_GENDER, people.gender[pos]),
    )
    fragments.append(
        Fragment(
            pos, t, "identify", "store", KEY_MEMBER, {"identifiers": ids, "properties": traits}
        )
    )

    web = np.flatnonzero(np.isfinite(opened["web"]))
    t = time_of_day(rng, opened["web"][web])
    ids = json_object(anonymous_id=take(people.device, web), phone=take(people.phone, web))
    fragments.append(
        Fragment(
            web, t, "identify", "web", KEY_PHONE, {"identifiers": ids}, web=np.ones(len(web), bool)
        )
    )

    mail = np.flatnonzero(np.isfinite(opened["email"]))
    t = time_of_day(rng, opened["email"][mail])
    email = take(people.email, mail)
    email = _where(rng.random(len(mail)) < 0.1, pc.utf8_upper(email), email)  # as typed into a form
    ids = _where(
        people.has_pos[mail],
        json_object(email=email, member_no=take(people.member_no, mail)),
        json_object(email=email, phone=_phone_dashed(people, mail)),
    )
    fragments.append(
        Fragment(
            mail,
            t,
            "identify",
            "crm",
            KEY_EMAIL,
            {"identifiers": ids, "properties": json_object(name=take(people.name, mail))},
        )
    )

    kiosk = np.flatnonzero((people.kiosk >= 0) & np.isfinite(opened["pos"]))
    t = time_of_day(rng, np.maximum(opened["pos"][kiosk], 0) + rng.uniform(0, 60, len(kiosk)))
    device = join("KIOSK-ST", digits(people.kiosk[kiosk], 3))
    ids = json_object(device_id=device, phone=take(people.phone, kiosk))
    fragments.append(
        Fragment(
            kiosk,
            t,
            "identify",
            "store",
            KEY_PHONE,
            {"identifiers": ids, "scene": pa.array(["store_kiosk"] * len(kiosk))},
        )
    )
    return fragments


def _referrals(rng: np.random.Generator, people: People, reg_day: FloatArray) -> pa.Array:
    """Referred people name an earlier-registered member of the same chunk as their referrer."""
    n = len(people)
    order = np.argsort(reg_day, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    referred = (people.registration == 4) & (position > 0)
    referrer = order[(rng.random(n) * np.maximum(position, 1)).astype(np.int64)]
    props = json_object(referrer=join("member_no:", take(people.member_no, referrer)))
    return _where(referred, props, pa.nulls(n, pa.string()))


def _wecom_groups(
    rng: np.random.Generator, people: People, cal: Calendar, wecom: IntArray, added: FloatArray
) -> list[Fragment]:
    joins = rng.random(len(wecom)) < 0.3
    pid, t_join = wecom[joins], added[joins] + rng.exponential(10, joins.sum())
    group = json_object(group_id=join("G", digits(rng.integers(1, 60, len(pid)), 3)))
    leaves = rng.random(len(pid)) < 0.25
    t_leave = t_join + rng.exponential(60, len(pid))
    keep_join, keep_leave = t_join < cal.days, leaves & (t_leave < cal.days)
    return [
        Fragment(
            pid[keep_join],
            t_join[keep_join],
            "group_join",
            "wecom",
            KEY_WECOM,
            {"properties": group.filter(pa.array(keep_join))},
        ),
        Fragment(
            pid[keep_leave],
            t_leave[keep_leave],
            "group_leave",
            "wecom",
            KEY_WECOM,
            {"properties": group.filter(pa.array(keep_leave))},
        ),
    ]


def contact_removals(
    rng: np.random.Generator, people: People, cal: Calendar, opened: dict[str, FloatArray]
) -> tuple[Fragment, FloatArray]:
    """Lapsed people delete the store staff from WeCom; returns the events and the day each
    WeCom contact stops being reachable (inf: still a contact)."""
    gone = np.isfinite(opened["wecom"]) & (people.end1 < cal.days) & ~np.isfinite(people.start2)
    gone &= rng.random(len(people)) < 0.35
    day = np.maximum(people.end1, opened["wecom"]) + rng.uniform(0, 60, len(people))
    pid = np.flatnonzero(gone & (day < cal.days) & (day >= 0))
    until = np.full(len(people), np.inf)
    until[pid] = day[pid]
    return Fragment(
        pid, time_of_day(rng, day[pid]), "wecom_delete_contact", "wecom", KEY_WECOM
    ), until


# channel, key, delivered, opened, clicked, unsubscribe per send, complaint per send
_CAMPAIGN_CHANNELS = {
    "wecom": (KEY_WECOM, 0.99, 0.32, 0.07, 0.0, 0.0),
    "sms": (KEY_PHONE, 0.97, 0.0, 0.025, 0.004, 0.0003),
    "email": (KEY_EMAIL, 0.94, 0.18, 0.035, 0.003, 0.0002),
}


def _campaigns(cal: Calendar) -> list[tuple[str, str, float, float]]:
    """(campaign id, channel, day with local send time, audience share) in the window."""
    found = []
    for day in range(cal.days):
        when = cal.start + timedelta(days=day)
        stamp = when.strftime("%Y%m%d")
        if when.weekday() == 3 and day % 14 < 7:
            found.append((f"WC-{stamp}", "wecom", day + 20 / 24, 0.2))
        if when.day == 1:
            found.append((f"EM-{stamp}", "email", day + 11 / 24, 0.4))
    for label, first, last in cal.promo_windows():
        for day in (first, max(first, last - 2)):
            found.append(
                (
                    f"SMS-{label}-{(cal.start + timedelta(days=day)).strftime('%Y%m%d')}",
                    "sms",
                    day + 10 / 24,
                    0.3,
                )
            )
    for new_year in ref.SPRING_FESTIVAL.values():
        day = cal.day_of(new_year) - 10
        if 0 <= day < cal.days:
            found.append((f"SMS-CNY-{new_year.year}", "sms", day + 10 / 24, 0.3))
    return found


def messages(
    rng: np.random.Generator,
    people: People,
    cal: Calendar,
    opened: dict[str, FloatArray],
    wecom_until: FloatArray,
) -> list[Fragment]:
    campaigns = _campaigns(cal)
    lapse = np.where(np.isfinite(people.end2), people.end2, people.end1) + 120
    phone_known = np.minimum(
        np.minimum(opened["pos"], opened["web"]),
        np.where(people.phone_authorised, opened["mp"], np.inf),
    )
    reachable_from = {"wecom": opened["wecom"], "sms": phone_known, "email": opened["email"]}
    reachable_until = {"wecom": np.minimum(wecom_until, lapse), "sms": lapse, "email": lapse}
    fragments: list[Fragment] = []
    for channel, (
        key,
        p_deliver,
        p_open,
        p_click,
        p_unsub,
        p_complain,
    ) in _CAMPAIGN_CHANNELS.items():
        mine = [c for c in campaigns if c[1] == channel]
        if not mine:
            continue
        send_day = np.array([c[2] for c in mine])
        share = np.array([c[3] for c in mine])
        eligible = (reachable_from[channel][:, None] <= send_day[None, :]) & (
            send_day[None, :] < reachable_until[channel][:, None]
        )
        chosen = eligible & (rng.random(eligible.shape) < share[None, :])
        pid, camp = np.nonzero(chosen)
        t = send_day[camp] + rng.uniform(0, 20, len(pid)) / 1440
        # Unsubscribing or complaining ends a person's sends on this channel.
        if p_unsub or p_complain:
            rank = rank_within(pid, t)
            stop_unsub = (
                rng.geometric(p_unsub, len(people)) if p_unsub else np.full(len(people), 10**9)
            )
            stop_complain = (
                rng.geometric(p_complain, len(people))
                if p_complain
                else np.full(len(people), 10**9)
            )
            stop = np.minimum(stop_unsub, stop_complain)
            keep = rank <= stop[pid]
            pid, camp, t, rank = pid[keep], camp[keep], t[keep], rank[keep]
            last = rank == stop[pid]
            complained = last & (stop_complain[pid] < stop_unsub[pid])
        else:
            last = complained = np.zeros(len(pid), bool)
        ids = pa.array([c[0] for c in mine])
        props = json_object(campaign_id=take(ids, camp))
        boost = np.where(people.active_rows(pid, t), 1.6, 0.5)
        delivered = rng.random(len(pid)) < p_deliver
        opened_msg = delivered & (rng.random(len(pid)) < p_open * boost)
        clicked = (
            delivered & (rng.random(len(pid)) < p_click * boost) & (opened_msg | (p_open == 0))
        )
        lag = rng.exponential(2 / 24, len(pid))
        for name, mask, offset in (
            ("message_sent", np.ones(len(pid), bool), 0.0),
            ("message_delivered", delivered, 3 / 86400),
            ("message_opened", opened_msg, lag),
            ("message_clicked", clicked, lag + 1 / 1440),
            ("unsubscribe", last & ~complained & delivered, lag + 2 / 1440),
            ("complaint", complained & delivered, lag + 3 / 1440),
        ):
            rows = np.flatnonzero(mask & (t + offset < cal.days))
            off = offset[rows] if isinstance(offset, np.ndarray) else offset
            fragments.append(
                Fragment(
                    pid[rows],
                    t[rows] + off,
                    name,
                    channel,
                    key,
                    {"properties": props.take(pa.array(rows))},
                )
            )
    return fragments
