"""Built-in policies ``sdtm`` (CDISC SDTM domains) and ``ehr`` (Synthea / FHIR-like CSV).

They are stored like any other policy the first time they are used, so a snapshot names
them with their version and hash; stewards copy and edit them (``datalibrary policies
show sdtm > mine.yaml``). Both cover every column of the files in the shared test data;
a column they do not know stops the job (fail closed) instead of being kept.
"""

from __future__ import annotations

from datalibrary.privacy.vocabulary import policy_columns_yaml

SDTM = (
    """\
name: sdtm
version: 3
description: >-
  CDISC SDTMIG 3.1.2-3.4 and ADaMIG 1.0-1.3 (ADSL, BDS, OCCDS) datasets: every standard
  variable has a rule from the vocabulary table (privacy/data/cdisc_variables.csv,
  cross-checked against public IG metadata):
  subjects pseudonymized with the study key, every date shifted by one secret offset per
  subject (whole ISO 8601 grammar, precision kept, --DY unchanged), birth dates to the year
  (none when the age is top-coded), ages over 89 top-coded, names dropped, verbatim terms
  and comments scrubbed, SUPPQUAL/RELREC values handled per QNAM/IDVAR. Sponsor-specific
  variables have no rule and fail closed, except dates (*DTC, shifted) and study days (*DY).
subject: [USUBJID]
quasi_identifiers: [AGE, SEX, RACE, ETHNIC, COUNTRY]
tier: internal
columns:
"""
    + policy_columns_yaml()
    + """\
  "*DTC": date_shift
  "*DY": keep
"""
)

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
