"""Built-in policies ``sdtm`` (CDISC SDTM domains) and ``ehr`` (Synthea / FHIR-like CSV).

They are stored like any other policy the first time they are used, so a snapshot names
them with their version and hash; stewards copy and edit them (``datalibrary policies
show sdtm > mine.yaml``). Both cover every column of the files in the shared test data;
a column they do not know stops the job (fail closed) instead of being kept.
"""

from __future__ import annotations

SDTM_SUFFIXES = [
    "SEQ",
    "GRPID",
    "REFID",
    "SPID",
    "LNKID",
    "LNKGRP",
    "TESTCD",
    "TEST",
    "CAT",
    "SCAT",
    "POS",
    "ORRES",
    "ORRESU",
    "ORNRLO",
    "ORNRHI",
    "STRESC",
    "STRESN",
    "STRESU",
    "STNRLO",
    "STNRHI",
    "STNRC",
    "NRIND",
    "STAT",
    "REASND",
    "NAM",
    "SPEC",
    "METHOD",
    "BLFL",
    "FAST",
    "DRVFL",
    "EVAL",
    "TOX",
    "TOXGR",
    "SEV",
    "SER",
    "ACN",
    "ACNOTH",
    "REL",
    "OUT",
    "SCAN",
    "SCONG",
    "SDISAB",
    "SDTH",
    "SHOSP",
    "SLIFE",
    "SOD",
    "SMIE",
    "DECOD",
    "LLT",
    "LLTCD",
    "PTCD",
    "HLT",
    "HLTCD",
    "HLGT",
    "HLGTCD",
    "BODSYS",
    "BDSYCD",
    "SOC",
    "SOCCD",
    "MODIFY",
    "INDC",
    "CLAS",
    "CLASCD",
    "DOSE",
    "DOSTXT",
    "DOSU",
    "DOSFRM",
    "DOSFRQ",
    "DOSTOT",
    "DOSRGM",
    "ROUTE",
    "PRESP",
    "OCCUR",
    "STRF",
    "ENRF",
    "EVINTX",
    "STRTPT",
    "STTPT",
    "ENRTPT",
    "ENTPT",
    "LOC",
    "LAT",
    "DIR",
    "PORTOT",
    "ELTM",
    "TPT",
    "TPTNUM",
    "TPTREF",
    "LOINC",
    "CHRON",
    "DISTR",
    "RESCAT",
    "DUR",
    "ADJ",
    "STINT",
    "ENINT",
    "CONTRT",
    "PATT",
]

SDTM = f"""\
name: sdtm
version: 2
description: >-
  CDISC SDTM domains (PhUSE de-identification): subjects pseudonymized with the study key,
  every --DTC shifted by one secret offset per subject (precision kept, --DY unchanged),
  birth dates to the year, ages over 89 top-coded, verbatim terms scrubbed.
subject: [USUBJID]
quasi_identifiers: [AGE, SEX, RACE, ETHNIC, COUNTRY]
tier: internal
columns:
  STUDYID: keep
  DOMAIN: keep
  RDOMAIN: keep
  USUBJID: pseudonymize
  SUBJID: {{action: pseudonymize, scope: subjid}}
  SITEID: keep
  INVID: drop
  INVNAM: drop
  BRTHDTC: {{action: generalize, method: year, age: AGE}}
  AGE: {{action: generalize, method: top_code, max: 89, to: 90}}
  AGEU: keep
  SEX: keep
  RACE: keep
  ETHNIC: keep
  COUNTRY: keep
  DTHFL: keep
  ARMCD: keep
  ARM: keep
  ACTARMCD: keep
  ACTARM: keep
  VISITNUM: keep
  VISIT: keep
  VISITDY: keep
  EPOCH: keep
  ETCD: keep
  ELEMENT: keep
  TAETORD: keep
  TABRANCH: keep
  TATRANS: keep
  TESTRL: keep
  TEENRL: keep
  TEDUR: keep
  IETESTCD: keep
  IETEST: keep
  IECAT: keep
  TIRL: keep
  TSPARMCD: keep
  TSPARM: keep
  TSVAL: keep
  TVSTRL: keep
  TVENRL: keep
  SEUPDES: keep
  IDVAR: keep
  IDVARVAL: {{action: by_variable, key: IDVAR}}
  RELTYPE: keep
  RELID: pseudonymize
  QNAM: keep
  QLABEL: scrub_text
  QVAL: {{action: by_variable, key: QNAM}}
  QORIG: keep
  QEVAL: keep
  "*DTC": date_shift
  "*DY": keep
  "re:^[A-Z]{{2}}(TERM|TRT|COMMENT|COVAL)$": scrub_text
  "re:^[A-Z]{{2}}({"|".join(SDTM_SUFFIXES)})$": keep
"""

EHR = """\
name: ehr
version: 1
description: >-
  Synthea / FHIR-like EHR tables (HIPAA Safe Harbor minded): names, SSN, documents,
  street address and coordinates dropped; record ids pseudonymized with the study key;
  dates shifted per patient; birth date to the year; ZIP to ZIP3 (restricted -> 000);
  free-text notes scrubbed.
subject: [PATIENT, PATIENTID, Id]
quasi_identifiers: [BIRTHDATE, GENDER, RACE, ETHNICITY, ZIP]
tier: internal
columns:
  # identifiers
  "re:^(Id|ID|PATIENT|PATIENTID|ENCOUNTER|PROVIDER|PROVIDERID|ORGANIZATION)$": pseudonymize
  "re:^(PAYER|SECONDARY_PAYER)$": pseudonymize
  "re:^(CLAIMID|CHARGEID|APPOINTMENTID|MEMBERID|PLACEOFSERVICE|TRANSFEROUTID|FEESCHEDULEID)$": pseudonymize
  "re:^(PRIMARYPATIENTINSURANCEID|SECONDARYPATIENTINSURANCEID|PATIENTINSURANCEID)$": pseudonymize
  "re:^(REFERRINGPROVIDERID|SUPERVISINGPROVIDERID|DEPARTMENTID|PATIENTDEPARTMENTID)$": pseudonymize
  "re:^(SERIES_UID|INSTANCE_UID|UDI)$": pseudonymize
  "re:^(SSN|DRIVERS|PASSPORT|PREFIX|FIRST|MIDDLE|LAST|SUFFIX|MAIDEN|NAME|OWNER_NAME)$": drop
  "re:^(ADDRESS|CITY|COUNTY|FIPS|BIRTHPLACE|LAT|LON|PHONE|EMAIL)$": drop
  ZIP: {action: generalize, method: zip3}
  BIRTHDATE: {action: generalize, method: year}
  # dates: one offset per patient
  "re:^(START|STOP|DATE|START_DATE|END_DATE|FROMDATE|TODATE|DEATHDATE)$": date_shift
  "re:^(CURRENTILLNESSDATE|SERVICEDATE|LASTBILLEDDATE1|LASTBILLEDDATE2|LASTBILLEDDATEP)$": date_shift
  # free text
  "re:^(NOTES|LINENOTE|NOTE|COMMENTS?)$": {action: scrub_text, names_from: [FIRST, MIDDLE, LAST, MAIDEN]}
  # clinical and administrative content
  "re:^(MARITAL|RACE|ETHNICITY|GENDER|STATE|STATE_HEADQUARTERED|SPECIALITY|OWNERSHIP|PLAN_OWNERSHIP)$": keep
  "re:^(HEALTHCARE_EXPENSES|HEALTHCARE_COVERAGE|INCOME|REVENUE|UTILIZATION|ENCOUNTERS|PROCEDURES)$": keep
  "re:^(SYSTEM|CODE|DESCRIPTION|TYPE|CATEGORY|VALUE|UNITS|ENCOUNTERCLASS|QUANTITY|DISPENSES)$": keep
  "re:^(REASONCODE|REASONDESCRIPTION|REACTION[12]|DESCRIPTION[12]|SEVERITY[12])$": keep
  "re:^(BASE_COST|PAYER_COVERAGE|TOTALCOST|BASE_ENCOUNTER_COST|TOTAL_CLAIM_COST)$": keep
  "re:^(BODYSITE_CODE|BODYSITE_DESCRIPTION|MODALITY_CODE|MODALITY_DESCRIPTION)$": keep
  "re:^(SOP_CODE|SOP_DESCRIPTION)$": keep
  "re:^(PROCEDURE_CODE|PROCEDURECODE|MODIFIER[12]|DIAGNOSIS[1-8]|DIAGNOSISREF[1-4]|UNITS|UNITAMOUNT)$": keep
  "re:^(STATUS[12P]|OUTSTANDING[12P]?|HEALTHCARECLAIMTYPEID[12]|AMOUNT|METHOD|TRANSFERTYPE)$": keep
  "re:^(PAYMENTS|ADJUSTMENTS|TRANSFERS)$": keep
  "re:^(AMOUNT_COVERED|AMOUNT_UNCOVERED|UNIQUE_CUSTOMERS|QOLS_AVG|MEMBER_MONTHS)$": keep
  "re:^(COVERED|UNCOVERED)_(ENCOUNTERS|MEDICATIONS|PROCEDURES|IMMUNIZATIONS)$": keep
"""

BUILTIN: dict[str, str] = {"sdtm": SDTM, "ehr": EHR}
