"""Writing a drop: streaming CSV/Parquet writers and the batch finaliser shared by background and cases;
number formatting is in `formats.py`, person rows in `persons.py`.

A `Batch` holds persons, visits and fee lines of a group of persons as numpy arrays (plain integers:
day of year, seconds of day, cnt in 1/10,000, pric in 1/1,000,000, money in cents). `DropWriter.write`
turns it into contract rows (strings), derives the settlements from the lines, appends everything to the
entity files and keeps the small aggregates the inventory rows need.
"""
from __future__ import annotations

import shutil
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.contract import ENTITIES

from . import kb as K
from .formats import by_unique, fmt_cnt, fmt_fixed, fmt_pric, round_amount

I64 = np.int64


# ----------------------------------------------------------------------------------------- batch
@dataclass
class Batch:
    # persons
    p_seq: np.ndarray          # global person number
    p_gend: np.ndarray         # 1/2
    p_by: np.ndarray
    p_bm: np.ndarray
    p_bd: np.ndarray
    p_die: np.ndarray          # day of year of death, or -9999
    p_insu: np.ndarray         # 310/390
    # visits
    v_psn: np.ndarray          # global person number
    v_inst: np.ndarray         # institution index
    v_med: np.ndarray          # med_type as int (11, 13, 14, 21, 24, 28, 41, 52)
    v_bday: np.ndarray
    v_bsec: np.ndarray
    v_eday: np.ndarray         # -1 for outpatient
    v_esec: np.ndarray
    v_dx1: np.ndarray          # index into DX
    v_dx2: np.ndarray          # -1: none
    v_dept: np.ndarray         # index into DEPTS
    # lines
    l_v: np.ndarray            # local visit index
    l_item: np.ndarray
    l_day: np.ndarray
    l_sec: np.ndarray
    l_c4: np.ndarray
    l_p6: np.ndarray
    l_lv: np.ndarray           # chrgitm_lv 1/2/3 (3 = self-paid, inscp 0)
    l_init: np.ndarray         # local index of the line a refund points to, -1 none
    l_tk: np.ndarray           # dscg_tkdrug_flag
    l_cap6: np.ndarray         # fee_list.pric_uplmt_amt, -1 empty
    l_resend: np.ndarray       # bool: write the row twice (identical re-send)
    # filled by DropWriter.write
    l_sn: np.ndarray | None = None
    v_id: np.ndarray | None = None


DEPTS = ("A03", "A04", "A05", "A07", "A12", "A13", "A14", "A01", "A10", "A50")   # 内外妇儿眼耳皮... 科别
INPATIENT_MED = (21, 24, 28, 52)


@dataclass
class Institutions:
    code: np.ndarray      # object str
    name: np.ndarray
    type_: np.ndarray     # "1"/"2"
    hosp_lv: np.ndarray   # "01".."11"
    natu: np.ndarray
    beds: np.ndarray      # int (0 for pharmacies)
    admdvs: np.ndarray
    rank: np.ndarray = field(init=False)

    def __post_init__(self):
        self.rank = np.array([K.HOSP_RANK[h] for h in self.hosp_lv], dtype=np.int8)

    def __len__(self):
        return len(self.code)


# ----------------------------------------------------------------------------------------- writer
class DropWriter:
    """Streams entity files into a drop folder and keeps the aggregates for inventory and the summary."""

    CSV_OPTS = pacsv.WriteOptions(quoting_style="none", quoting_header="none", batch_size=1024)
    MAX_PENDING = 6     # tables queued for the writer thread (bounds memory)

    def __init__(self, out: Path, year: int, inst: Institutions, admdvs: str, dx: list[tuple[str, str]]):
        self.out = Path(out)
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        self.year = year
        self.inst = inst
        self.admdvs = admdvs
        self.dx = dx
        self.kb = K.KbArrays()
        self.base = np.datetime64(f"{year}-01-01")
        self.n_days = int((np.datetime64(f"{year + 1}-01-01") - self.base).astype(int))
        dates = self.base + np.arange(self.n_days + 40)
        self.date_str = pa.array([str(d) for d in dates])
        self.month_of_day = (dates.astype("datetime64[M]").astype(int) - self.base.astype("datetime64[M]").astype(int))
        secs = np.arange(86400)
        two = lambda x: pc.utf8_lpad(pc.cast(pa.array(x), pa.string()), 2, "0")
        self.tod_str = pc.binary_join_element_wise(two(secs // 3600), two(secs // 60 % 60), two(secs % 60), ":")
        self.item_code = pa.array(list(self.kb.codes))
        self.item_name = pa.array(list(self.kb.names))
        self.item_chrg = pa.array(list(self.kb.chrg))
        self.item_local = pa.array([f"YN{i * 37 + 1000:06d}" for i in range(self.kb.n)])
        self.lv_str = pa.array(["", "01", "02", "03"])
        self.flag_str = pa.array(["0", "1"])
        self.inst_code = pa.array(list(inst.code))
        self.dx_code = pa.array([c for c, _ in dx])
        self.dx_name = pa.array([n for _, n in dx])
        self.dept = pa.array(list(DEPTS))
        self._writers: dict[str, object] = {}
        self._pool = ThreadPoolExecutor(max_workers=1)      # one thread: files written in submission order
        self._pending: deque = deque()
        self.rows: dict[str, int] = {}
        self.seq = {"psn": 0, "mdtrt": 0, "sn": 0}
        # billed cnt (1e-4, netted, every line) per institution x item x month, for inventory rows
        self.billed = np.zeros((len(inst), self.kb.n, 12), dtype=np.float64)
        self.fee_files = {"p1": "fee_list_part1.csv", "p2": "fee_list_part2.csv",
                          "pq": f"fee_list-{year}-12.parquet"}

    # -- ids
    @staticmethod
    def scramble(seq: np.ndarray) -> np.ndarray:
        """A bijection of 0..10**10-1: ids look random, injected and background records interleave."""
        return (np.asarray(seq, dtype=I64) * 738_219_673 + 4_127_031_117) % 10_000_000_000

    def psn_no(self, seq: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(self.admdvs, pc.utf8_lpad(pc.cast(pa.array(self.scramble(seq)), pa.string()), 10, "0"), "")

    def mdtrt_id(self, seq: np.ndarray, prefix: str = "MD") -> pa.Array:
        return pc.binary_join_element_wise(f"{prefix}{self.year}", pc.utf8_lpad(pc.cast(pa.array(self.scramble(seq)), pa.string()), 10, "0"), "")

    def sn_str(self, seq: np.ndarray) -> pa.Array:
        # 12 digits, never a leading zero: sorts the same as a string and as a number
        return pc.cast(pa.array(np.asarray(seq, dtype=I64) + 100_000_000_000), pa.string())

    def ts(self, day: np.ndarray, sec: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(self.date_str.take(pa.array(np.asarray(day, dtype=I64))),
                                           self.tod_str.take(pa.array(np.asarray(sec, dtype=I64))), " ")

    def date(self, day: np.ndarray) -> pa.Array:
        return self.date_str.take(pa.array(np.asarray(day, dtype=I64)))

    # -- raw writing
    def _schema(self, entity: str) -> pa.Schema:
        return pa.schema([(n, pa.string()) for n in ENTITIES[entity].names])

    def append(self, entity: str, cols: dict[str, pa.Array], n: int, file: str | None = None) -> None:
        if n == 0:
            return
        schema = self._schema(entity)
        arrays = [cols[name] if name in cols else pa.nulls(n, pa.string()) for name in schema.names]
        table = pa.Table.from_arrays([a if isinstance(a, (pa.Array, pa.ChunkedArray)) else pa.array(a, pa.string())
                                      for a in arrays], schema=schema)
        file = file or f"{entity}.csv"
        self.rows[entity] = self.rows.get(entity, 0) + n
        while len(self._pending) >= self.MAX_PENDING:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write_table, file, table))

    def _write_table(self, file: str, table: pa.Table) -> None:
        w = self._writers.get(file)
        if w is None:
            path = self.out / file
            if file.endswith(".parquet"):
                w = pq.ParquetWriter(path, table.schema, compression="zstd")
            else:
                w = pacsv.CSVWriter(path, table.schema, write_options=self.CSV_OPTS)
            self._writers[file] = w
        if file.endswith(".parquet"):
            w.write_table(table, row_group_size=1_000_000)
        else:
            w.write_table(table)

    def close(self) -> None:
        while self._pending:
            self._pending.popleft().result()
        self._pool.shutdown(wait=True)
        for w in self._writers.values():
            w.close()
        self._writers.clear()

    # -- KB and institutions
    def write_kb(self) -> None:
        for name, rows in K.kb_tables().items():
            cols = list(zip(*rows))
            self.append(name, {n: pa.array(list(c), pa.string()) for n, c in zip(ENTITIES[name].names, cols)},
                        len(rows))

    def write_institutions(self) -> None:
        i = self.inst
        beds = pa.array([str(b) if b else None for b in i.beds], pa.string())
        self.append("fixmedins", {"fixmedins_code": pa.array(list(i.code)), "fixmedins_name": pa.array(list(i.name)),
                                  "fixmedins_type": pa.array(list(i.type_)), "hosp_lv": pa.array(list(i.hosp_lv)),
                                  "medins_natu": pa.array(list(i.natu)), "aprv_bed_cnt": beds,
                                  "admdvs": pa.array(list(i.admdvs))}, len(i))

    # -- a batch
    def bucket(self, day: np.ndarray) -> np.ndarray:
        """fee_list file of a line: 0 = part1 (Jan-Jun), 1 = part2 (Jul-Nov), 2 = Parquet (Dec)."""
        m = self.month_of_day[day]
        return np.where(m < 6, 0, np.where(m < 11, 1, 2))

    def assign_ids(self, b: Batch) -> None:
        """Sort lines by (file, visit, time), give global feedetl_sn and mdtrt numbers."""
        nl = len(b.l_v)
        nv = max(len(b.v_psn), 1)
        k = ((self.bucket(b.l_day).astype(I64) * nv + b.l_v) * 512 + b.l_day) * 86400 + b.l_sec
        order = np.argsort(k, kind="stable")
        rank = np.empty(nl, dtype=I64)
        rank[order] = np.arange(nl)
        b.l_sn = self.seq["sn"] + rank
        self.seq["sn"] += nl
        b.v_id = self.seq["mdtrt"] + np.arange(len(b.v_psn), dtype=I64)
        self.seq["mdtrt"] += len(b.v_psn)
        b._order = order

    def write(self, b: Batch, persons: pa.Table | None) -> None:
        if b.l_sn is None:
            self.assign_ids(b)
        kb = self.kb
        nv, nl = len(b.v_psn), len(b.l_v)
        # ---- line money
        amt = round_amount(b.l_c4, b.l_p6)
        fund = b.l_lv != 3
        inscp = np.where(fund, amt, 0)
        ownpay = np.where(fund, 0, amt)
        # ---- settlements (one per visit)
        w = lambda x: np.rint(np.bincount(b.l_v, weights=x.astype(np.float64), minlength=nv)).astype(I64)
        medfee, s_inscp, s_own = w(amt), w(inscp), w(ownpay)
        yi = w(np.where(b.l_lv == 2, amt, 0))
        pre = (yi * 10 + 50) // 100                       # 乙类 先行自付 10 %
        inpatient = np.isin(b.v_med, INPATIENT_MED)
        if len(b.p_seq):     # persons of the batch are in increasing seq order
            pidx = np.searchsorted(b.p_seq, b.v_psn)
            emp, v_die = b.p_insu[pidx] == 310, b.p_die[pidx]
        else:
            emp, v_die = np.zeros(nv, bool), np.full(nv, -9999)
        rate = np.where(inpatient, np.where(emp, 85, 70), np.where(emp, 60, 50))
        dedc = np.where(inpatient, 60_000, 0)
        base = np.maximum(s_inscp - pre - dedc, 0)
        fund_all = base * rate // 100
        hifmi = np.where(fund_all > 2_000_000, (fund_all - 2_000_000) * 60 // 100, 0)
        hifp = fund_all - hifmi
        fundsum = hifp + hifmi
        psn_pay = medfee - fundsum
        acct = np.where(emp & ~inpatient, np.minimum(psn_pay, s_inscp - fundsum).clip(0), 0)
        setl_day = np.where(inpatient, b.v_eday, b.v_bday)
        setl_sec = np.where(inpatient, np.minimum(b.v_esec + 600, 86399), np.minimum(b.v_bsec + 1800 + 3600 * 3, 86399))
        # setl after the last line of its visit
        last_key = np.full(nv, -1, dtype=I64)
        np.maximum.at(last_key, b.l_v, b.l_day.astype(I64) * 86400 + b.l_sec)
        setl_key = np.maximum(setl_day.astype(I64) * 86400 + setl_sec, last_key + 300)
        setl_day, setl_sec = setl_key // 86400, setl_key % 86400
        setl_day = np.minimum(setl_day, self.n_days + 30)

        # ---- persons
        if persons is not None:
            self.append("psn", {n: persons.column(n) for n in persons.column_names}, persons.num_rows)

        # ---- visits
        vid = self.mdtrt_id(b.v_id)
        sid = self.mdtrt_id(b.v_id, "ST")
        psn = self.psn_no(b.v_psn)
        instc = self.inst_code.take(pa.array(b.v_inst))
        med = pc.cast(pa.array(b.v_med), pa.string())
        inp = pa.array(inpatient)
        eday = np.where(inpatient, b.v_eday, 0)
        ipt_days = np.maximum(eday - b.v_bday, 1)
        dxc = self.dx_code.take(pa.array(b.v_dx1))
        died = inpatient & (v_die == eday)          # discharged dead on the death day
        self.append("mdtrt", {
            "mdtrt_id": vid, "psn_no": psn, "fixmedins_code": instc, "med_type": med,
            "begntime": self.ts(b.v_bday, b.v_bsec),
            "endtime": pc.if_else(inp, self.ts(eday, np.where(inpatient, b.v_esec, 0)), pa.nulls(nv, pa.string())),
            "ipt_days": pc.if_else(inp, pc.cast(pa.array(ipt_days), pa.string()), pa.nulls(nv, pa.string())),
            "dscg_way": pc.if_else(inp, pa.array(np.where(died, "5", "1")), pa.nulls(nv, pa.string())),
            "dscg_maindiag_code": pc.if_else(inp, dxc, pa.nulls(nv, pa.string())),
            "adm_dept_codg": self.dept.take(pa.array(b.v_dept)),
            "atddr_no": pc.binary_join_element_wise("D", pc.utf8_lpad(pc.cast(pa.array(b.v_inst * 100 + b.v_dept * 7 % 100), pa.string()), 6, "0"), ""),
        }, nv)
        # ---- diagnoses
        has2 = b.v_dx2 >= 0
        dvid = pa.concat_arrays([vid, vid.filter(pa.array(has2))])
        dcodes = np.concatenate([b.v_dx1, b.v_dx2[has2]])
        nd = len(dcodes)
        main = np.concatenate([np.ones(nv, bool), np.zeros(int(has2.sum()), bool)])
        self.append("diag", {"mdtrt_id": dvid, "diag_code": self.dx_code.take(pa.array(dcodes)),
                             "diag_name": self.dx_name.take(pa.array(dcodes)),
                             "diag_type": pa.array(np.full(nd, "1")),
                             "maindiag_flag": pa.array(np.where(main, "1", "0"))}, nd)
        # ---- settlements
        self.append("setl", {
            "setl_id": sid, "mdtrt_id": vid, "psn_no": psn, "fixmedins_code": instc,
            "setl_time": self.ts(setl_day, setl_sec),
            "medfee_sumamt": fmt_fixed(medfee, 2), "fulamt_ownpay_amt": fmt_fixed(s_own, 2),
            "overlmt_selfpay": fmt_fixed(np.zeros(nv, I64), 2), "preselfpay_amt": fmt_fixed(pre, 2),
            "inscp_scp_amt": fmt_fixed(s_inscp, 2), "hifp_pay": fmt_fixed(hifp, 2),
            "hifmi_pay": fmt_fixed(hifmi, 2), "fund_pay_sumamt": fmt_fixed(fundsum, 2),
            "psn_pay": fmt_fixed(psn_pay, 2), "acct_pay": fmt_fixed(acct, 2),
            "refd_setl_flag": pa.array(np.full(nv, "0")),
        }, nv)
        # ---- fee lines, in feedetl_sn order (numeric arrays permuted first, strings built once)
        o = b._order
        lv, item, day, sec = b.l_v[o], b.l_item[o], b.l_day[o], b.l_sec[o]
        c4, p6, lvl, cap6 = b.l_c4[o], b.l_p6[o], b.l_lv[o], b.l_cap6[o]
        sn = b.l_sn[o]
        init_local = b.l_init[o]
        init = np.where(init_local >= 0, b.l_sn[np.maximum(init_local, 0)], -1)
        amt_o, inscp_o, own_o = amt[o], inscp[o], ownpay[o]
        vdr = pc.if_else(pa.array(b.v_med == 41), pa.nulls(nv, pa.string()),
                         pc.binary_join_element_wise("D", pc.utf8_lpad(pc.cast(pa.array(b.v_inst * 100 + b.v_dept * 7 % 100), pa.string()), 6, "0"), ""))
        vdept = pc.if_else(pa.array(b.v_med == 41), pa.nulls(nv, pa.string()), self.dept.take(pa.array(b.v_dept)))
        lva, ita = pa.array(lv), pa.array(item)
        cols = {
            "feedetl_sn": self.sn_str(sn), "mdtrt_id": vid.take(lva), "setl_id": sid.take(lva),
            "psn_no": psn.take(lva), "fixmedins_code": instc.take(lva),
            "fee_ocur_time": self.ts(day, sec), "hilist_code": self.item_code.take(ita),
            "hilist_name": self.item_name.take(ita), "medins_list_codg": self.item_local.take(ita),
            "med_chrgitm_type": self.item_chrg.take(ita), "chrgitm_lv": self.lv_str.take(pa.array(lvl.astype(I64))),
            "cnt": by_unique(c4, fmt_cnt), "pric": by_unique(p6, fmt_pric),
            "det_item_fee_sumamt": by_unique(amt_o, lambda u: fmt_fixed(u, 2)),
            "pric_uplmt_amt": by_unique(cap6, lambda u: pc.if_else(pa.array(u >= 0), fmt_pric(np.maximum(u, 0)),
                                                                   pa.nulls(len(u), pa.string()))),
            "inscp_scp_amt": by_unique(inscp_o, lambda u: fmt_fixed(u, 2)),
            "fulamt_ownpay_amt": by_unique(own_o, lambda u: fmt_fixed(u, 2)),
            "bilg_dept_codg": vdept.take(lva), "bilg_dr_codg": vdr.take(lva),
            "dscg_tkdrug_flag": self.flag_str.take(pa.array(b.l_tk[o].astype(I64))),
            "init_feedetl_sn": pc.if_else(pa.array(init >= 0), self.sn_str(np.maximum(init, 0)), pa.nulls(nl, pa.string())),
        }
        schema = self._schema("fee_list")
        table = pa.Table.from_arrays([cols[n] for n in schema.names], schema=schema)
        bucket = self.bucket(day)
        bounds = np.searchsorted(bucket, [0, 1, 2, 3])
        resend = b.l_resend[o]
        for k, key in enumerate(("p1", "p2", "pq")):
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            if hi == lo:
                continue
            t = table.slice(lo, hi - lo)
            again = np.flatnonzero(resend[lo:hi])
            if len(again):
                t = pa.concat_tables([t, t.take(pa.array(again))])
            self.append("fee_list", {n: t.column(n) for n in t.column_names}, t.num_rows, self.fee_files[key])
        # ---- aggregates (netted billed cnt of every line; re-sends counted once)
        m = self.month_of_day[b.l_day]
        flat = (b.v_inst[b.l_v].astype(I64) * kb.n + b.l_item) * 12 + m
        self.billed += np.bincount(flat, weights=b.l_c4.astype(np.float64),
                                   minlength=self.billed.size).reshape(self.billed.shape)
        self.last_setl = (setl_day, setl_sec, medfee, s_own)
