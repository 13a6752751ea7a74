"""The Streamlit app: one page per dashboard (the dbt exposures in dbt/models/exposures.yml).
`audotics dashboards` runs it; `streamlit run dashboards/app.py` does too."""

from __future__ import annotations

import streamlit as st

from dashboards.data_quality.page import render as data_quality
from dashboards.experiments.page import render as experiments
from dashboards.listening.page import render as listening
from dashboards.queries import WarehouseNotReady
from dashboards.recommendations.page import render as recommendations

st.set_page_config(page_title="Audotics dashboards", page_icon="🎧", layout="wide")

page = st.navigation(
    [
        st.Page(listening, title="Listening overview", default=True),
        st.Page(recommendations, title="Recommendations", url_path="recommendations"),
        st.Page(data_quality, title="Data quality", url_path="data_quality"),
        st.Page(experiments, title="Experiments", url_path="experiments"),
    ],
    position="top",
)
try:
    page.run()
except WarehouseNotReady as not_ready:
    st.warning(str(not_ready))
