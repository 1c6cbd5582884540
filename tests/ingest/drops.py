"""Tiny hand-made canonical drops for the ingestion tests (one comment per row says why it is there)."""
from __future__ import annotations

import csv
from pathlib import Path

FIXMEDINS = [
    ["fixmedins_code", "fixmedins_name", "fixmedins_type", "hosp_lv", "medins_natu", "aprv_bed_cnt", "admdvs"],
    ["H001", "第一人民医院", "1", "02", "1", "500", "110101"],   # a 三甲 hospital: hosp_lv 02 (sent unpadded in the twin)
    ["P001", "康民大药房", "2", "11", "2", "", "110101"],        # a pharmacy: no beds, level 11
]

PSN = [
    ["psn_no", "psn_name", "certno", "gend", "brdy", "insutype", "psn_type", "insu_admdvs", "die_date"],
    ["P1", "张三", "110101198001011234", "1", "1980-01-01", "310", "1101", "110101", ""],   # clear PII: must be hashed
    ["P2", "李四", "11010119900202567X", "2", "1990-02-02", "390", "1501", "110101", "2023-01-05"],  # with a death date
]

MDTRT = [
    ["mdtrt_id", "psn_no", "fixmedins_code", "med_type", "begntime", "endtime", "ipt_days", "dscg_way",
     "dscg_maindiag_code", "adm_dept_codg", "atddr_no", "dise_codg"],
    ["M1", "P1", "H001", "21", "2022-03-01 08:00:00", "2022-03-05 10:00:00", "4", "1", "N18.5", "A01", "D01", ""],  # a stay
    ["M2", "P2", "H001", "11", "2022-03-10 09:30:00", "", "", "", "", "A02", "D02", ""],   # an outpatient visit
    ["M3", "P2", "P001", "41", "2022-04-02 15:00:00", "", "", "", "", "", "", ""],          # a pharmacy purchase, April
]

SETL = [
    ["setl_id", "mdtrt_id", "psn_no", "fixmedins_code", "setl_time", "medfee_sumamt", "fulamt_ownpay_amt",
     "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "hifp_pay", "hifmi_pay", "fund_pay_sumamt",
     "psn_pay", "acct_pay", "refd_setl_flag"],
    ["S1", "M1", "P1", "H001", "2022-03-05 11:00:00", "329.50", "10.00", "0", "5.00", "314.50", "250.00", "0",
     "250.00", "79.50", "0", "0"],    # the stay's settlement: its netted lines, 200 + 46.50 - 15.50 + 98.50
    ["S2", "M2", "P2", "H001", "2022-03-10 10:00:00", "25.50", "0", "0", "0", "25.50", "15.30", "0", "15.30",
     "10.20", "10.20", "0"],          # outpatient settlement
    ["S3", "M3", "P2", "P001", "2022-04-02 15:05:00", "36.00", "0", "0", "0", "36.00", "0", "0", "0", "36.00",
     "36.00", "0"],                   # pharmacy settlement paid by the personal account
]

DIAG = [
    ["mdtrt_id", "diag_code", "diag_name", "diag_type", "maindiag_flag"],
    ["M1", "N18.5", "慢性肾脏病5期", "1", "1"],   # main diagnosis of the stay
    ["M1", "E11.9", "2型糖尿病", "1", "0"],       # secondary diagnosis
    ["M2", "J06.9", "急性上呼吸道感染", "1", "1"],  # outpatient diagnosis
]

FEE_HEAD = ["feedetl_sn", "mdtrt_id", "setl_id", "psn_no", "fixmedins_code", "fee_ocur_time", "hilist_code",
            "hilist_name", "medins_list_codg", "med_chrgitm_type", "chrgitm_lv", "cnt", "pric",
            "det_item_fee_sumamt", "pric_uplmt_amt", "inscp_scp_amt", "fulamt_ownpay_amt", "bilg_dept_codg",
            "bilg_dr_codg", "dscg_tkdrug_flag", "init_feedetl_sn"]
FEE_LIST = [
    FEE_HEAD,
    ["F1", "M1", "S1", "P1", "H001", "2022-03-01 09:00:00", "110900001", "床位费", "B01", "01", "01", "4", "50",
     "200.00", "60", "200.00", "0", "A01", "D01", "0", ""],     # bed days of the stay
    ["F2", "M1", "S1", "P1", "H001", "2022-03-02 10:15:30", "XA10BAA", "二甲双胍片", "Y01", "09", "01", "3",
     "15.5", "46.50", "", "46.50", "0", "A01", "D01", "0", ""],  # a drug, 3 boxes (one refunded by F3)
    ["F3", "M1", "S1", "P1", "H001", "2022-03-03 08:00:00", "XA10BAA", "二甲双胍片", "Y01", "09", "01", "-1",
     "15.5", "-15.50", "", "-15.50", "0", "A01", "D01", "0", "F2"],  # refund of one box of F2
    ["F4", "M1", "S1", "P1", "H001", "2022-03-04 00:00:00", "250101001", "血常规", "L01", "04", "02", "1",
     "98.5", "98.50", "", "68.50", "10.00", "A01", "D01", "0", ""],  # a lab test at midnight (date-only in the twin)
    ["F5", "M2", "S2", "P2", "H001", "2022-03-10 09:40:00", "110200001", "诊察费", "C01", "02", "01", "1",
     "25.5", "25.50", "", "25.50", "0", "A02", "D02", "0", ""],  # outpatient consultation
    ["F6", "M3", "S3", "P2", "P001", "2022-04-02 15:01:00", "XA10BAA", "二甲双胍片", "", "09", "01", "2",
     "18", "36.00", "", "36.00", "0", "", "", "0", ""],         # pharmacy sale, April partition
]

INV = [
    ["fixmedins_code", "hilist_code", "mvmt_type", "cnt", "pric", "occur_time", "batch_no"],
    ["P001", "XA10BAA", "stocktake", "10", "", "2022-03-31 00:00:00", ""],       # opening stock, no batch number
    ["P001", "XA10BAA", "purchase", "20", "12.5", "2022-04-01 09:00:00", "B20220401"],  # a purchase
    ["P001", "XA10BAA", "sale", "2", "18", "2022-04-02 15:01:00", "B20220401"],   # the pharmacy's own sale record
]

KB_HILIST = [
    ["hilist_code", "hilist_name", "list_type", "med_chrgitm_type", "chrgitm_lv", "pric_uplmt_amt", "gend_lmt",
     "age_min", "age_max", "ipt_only", "hosp_lv_min", "lmt_diag", "max_cnt_per_day", "per_diem",
     "min_interval_days", "max_pay_days", "markup_max_ratio", "focus_tags"],
    ["110900001", "床位费", "201", "01", "01", "60", "", "", "", "1", "", "", "1", "1", "", "", "", ""],  # per diem bed
    ["XA10BAA", "二甲双胍片", "101", "09", "01", "", "", "18", "", "", "", "E11", "6", "", "", "", "1.15",
     "慢病"],   # drug restricted to diabetes
]
KB_ITEM_PAIR = [
    ["hilist_code_a", "hilist_code_b", "relation", "window"],
    ["110900001", "110200001", "includes", "day"],   # bed day includes the consultation
]
KB_PARAM = [
    ["key", "value"],
    ["readmit_days", "15"],          # contract default
    ["self_pay_ratio_max", "0.08"],  # contract default
]

CANONICAL = {
    "fixmedins": FIXMEDINS, "psn": PSN, "mdtrt": MDTRT, "setl": SETL, "diag": DIAG, "fee_list": FEE_LIST,
    "inv_movement": INV, "kb_hilist": KB_HILIST, "kb_item_pair": KB_ITEM_PAIR, "kb_param": KB_PARAM,
}


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        csv.writer(f, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def write_canonical_drop(folder: Path, entities: dict[str, list[list[str]]] | None = None) -> Path:
    for name, rows in (entities or CANONICAL).items():
        write_csv(folder / f"{name}.csv", rows)
    return folder
