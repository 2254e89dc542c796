"""`recommender app`: a Streamlit front end over the newest pushed model (page.py is the script Streamlit runs;
logic.py holds what it does, testable without Streamlit)."""
